"""A small real Flask app that keeps its users in PostgreSQL: sign-up, login, password change,
an admin bulk endpoint, Alembic migrations (Flask-Migrate), audit lines in tda's contract
(docs/detection.md), and the restore endpoint of docs/recovery.md that takes `password`
(hashed here) or `hashed_password` (stored as it is; admin only, format-checked).

It carries the bug the drill exploits: POST /api/users/<id>/password lets any signed-in user
set anyone's password (a missing ownership check, as in real incident reports).

Settings (environment):
  DATABASE_URL          postgresql://user:pass@host:5432/db (required)
  SECRET_KEY            session signing key (required)
  ADMIN_TOKEN           bearer token of the admin API (required)
  APP_LOG               file of the app's log lines (default: stderr)
  PASSWORD_HASH_METHOD  werkzeug method (default pbkdf2:sha256:600000; the drill uses fewer
                        iterations to run on two shared cores)
"""

import datetime
import hmac
import logging
import os
import re
import time

from flask import Flask, abort, jsonify, request
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user, logout_user
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from werkzeug.security import check_password_hash, generate_password_hash

db = SQLAlchemy()
migrate = Migrate()
login_manager = LoginManager()
log = logging.getLogger("app")

# What a stored hash may look like: werkzeug's pbkdf2 and scrypt formats, and bcrypt. A
# restore endpoint that accepted anything could be used to set a known password.
HASH_FORMATS = [
    re.compile(r"^pbkdf2:sha(1|256|512):\d{1,7}\$[A-Za-z0-9./+]{1,64}\$[0-9a-f]{40,128}$"),
    re.compile(r"^scrypt:\d{1,7}:\d{1,3}:\d{1,3}\$[A-Za-z0-9./+]{1,64}\$[0-9a-f]{64,256}$"),
    re.compile(r"^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$"),
]


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class User(UserMixin, db.Model):
    __tablename__ = "users"
    id = db.Column(db.Integer, primary_key=True)
    email = db.Column(db.String(120), unique=True, nullable=False)
    password_hash = db.Column(db.String(255), nullable=False)
    role = db.Column(db.String(20), nullable=False, default="user")
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    # Every write sets updated_at (UTC): tda repair tells the incident's writes from later
    # legitimate ones by it.
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow, onupdate=utcnow)


class Order(db.Model):
    __tablename__ = "orders"
    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    total_cents = db.Column(db.Integer, nullable=False)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)


@login_manager.user_loader
def load_user(user_id):
    return db.session.get(User, int(user_id))


def audit(event, **fields):
    """One audit line per sensitive operation: `event key=value ...` (tda's contract)."""
    parts = [event]
    for k, v in fields.items():
        v = str(v)
        if not v or any(c in v for c in ' "='):
            v = '"' + v.replace('"', "'") + '"'
        parts.append(f"{k}={v}")
    log.info(" ".join(parts))


def client_ip():
    return request.headers.get("X-Forwarded-For", request.remote_addr or "-").split(",")[0].strip()


def actor():
    if current_user.is_authenticated:
        return current_user.email, current_user.role
    return "anonymous", "none"


def is_admin():
    token = request.headers.get("Authorization", "")
    want = "Bearer " + os.environ["ADMIN_TOKEN"]
    if hmac.compare_digest(token.encode(), want.encode()):
        return True
    return current_user.is_authenticated and current_user.role == "admin"


def require_admin():
    if not is_admin():
        abort(403)


def hash_password(password):
    return generate_password_hash(password, method=os.environ.get("PASSWORD_HASH_METHOD", "pbkdf2:sha256:600000"))


def body():
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        abort(400, "a JSON object is required")
    return data


def configure_logging(app):
    fmt = logging.Formatter("[%(asctime)s] %(levelname)s in %(module)s: %(message)s")
    fmt.converter = time.gmtime  # log in UTC, like the database's updated_at
    path = os.environ.get("APP_LOG")
    handler = logging.FileHandler(path) if path else logging.StreamHandler()
    handler.setFormatter(fmt)
    log.handlers = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False


def create_app():
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
    app.config["SECRET_KEY"] = os.environ["SECRET_KEY"]
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": True}
    os.environ["ADMIN_TOKEN"]  # required
    configure_logging(app)
    db.init_app(app)
    migrate.init_app(app, db)
    login_manager.init_app(app)

    @app.get("/healthz")
    def healthz():
        db.session.execute(db.select(1))
        return {"ok": True}

    @app.post("/api/signup")
    def signup():
        data = body()
        email, password = str(data.get("email", "")).strip().lower(), str(data.get("password", ""))
        if "@" not in email or len(password) < 8:
            abort(400, "an email and a password of at least 8 characters are required")
        if db.session.execute(db.select(User).filter_by(email=email)).scalar_one_or_none():
            abort(409, "this email is taken")
        user = User(email=email, password_hash=hash_password(password))
        db.session.add(user)
        db.session.commit()
        audit("user_created", user_id=user.id, actor=email, actor_role="user", ip=client_ip())
        return jsonify(id=user.id), 201

    @app.post("/api/login")
    def login():
        data = body()
        email = str(data.get("email", "")).strip().lower()
        user = db.session.execute(db.select(User).filter_by(email=email)).scalar_one_or_none()
        if user is None or not check_password_hash(user.password_hash, str(data.get("password", ""))):
            audit("login_failed", username=email, ip=client_ip())
            return jsonify(error="wrong email or password"), 401
        login_user(user)
        return jsonify(id=user.id)

    @app.post("/api/logout")
    @login_required
    def logout():
        logout_user()
        return "", 204

    @app.post("/api/password")
    @login_required
    def change_own_password():
        data = body()
        password = str(data.get("password", ""))
        if len(password) < 8:
            abort(400, "a password of at least 8 characters is required")
        current_user.password_hash = hash_password(password)
        db.session.commit()
        audit("password_changed", user_id=current_user.id, actor=current_user.email, actor_role=current_user.role, ip=client_ip())
        return "", 204

    @app.post("/api/users/<int:user_id>/password")
    @login_required
    def set_password(user_id):
        # The bug: no check that user_id is the signed-in user's (or that they are an admin).
        user = db.session.get(User, user_id) or abort(404)
        password = str(body().get("password", ""))
        if len(password) < 8:
            abort(400, "a password of at least 8 characters is required")
        user.password_hash = hash_password(password)
        db.session.commit()
        name, role = actor()
        audit("password_changed", user_id=user.id, actor=name, actor_role=role, ip=client_ip())
        return "", 204

    @app.post("/api/orders")
    @login_required
    def create_order():
        cents = int(body().get("total_cents", 0))
        order = Order(user_id=current_user.id, total_cents=cents)
        db.session.add(order)
        db.session.commit()
        return jsonify(id=order.id), 201

    @app.post("/admin/users/bulk")
    def admin_bulk():
        """Admin bulk operations: {"action": "delete" | "disable", "ids": [...]}."""
        require_admin()
        data = body()
        ids = [int(i) for i in data.get("ids", [])]
        if data.get("action") != "delete" or not ids:
            abort(400, 'use {"action": "delete", "ids": [...]}')
        users = db.session.execute(db.select(User).where(User.id.in_(ids))).scalars().all()
        for u in users:
            db.session.delete(u)
        db.session.commit()
        for u in users:
            audit("user_deleted", user_id=u.id, actor="admin-api", actor_role="admin", ip=client_ip())
        return jsonify(deleted=len(users))

    @app.post("/admin/users/<int:user_id>/restore")
    def admin_restore(user_id):
        """Sets a user's credentials back (docs/recovery.md): `hashed_password` is stored as it
        is (never hashed again) once its format is checked; `password` is hashed."""
        require_admin()
        user = db.session.get(User, user_id) or abort(404)
        data = body()
        if "hashed_password" in data:
            hashed = str(data["hashed_password"])
            if not any(f.match(hashed) for f in HASH_FORMATS):
                abort(400, "hashed_password is not a password hash this app stores")
            user.password_hash = hashed
        elif "password" in data:
            user.password_hash = hash_password(str(data["password"]))
        else:
            abort(400, "give password or hashed_password")
        db.session.commit()
        audit("user_restored", user_id=user.id, actor="admin-api", actor_role="admin", ip=client_ip())
        return "", 204

    return app


app = create_app() if os.environ.get("DATABASE_URL") else None
