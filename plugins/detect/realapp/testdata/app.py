"""A small Flask app written the way teams write them: Flask-SQLAlchemy models, Flask-Login
form login, Flask-Migrate (Alembic) migrations and a JSON API. It logs its requests, its SQL
and its migrations in the logging setup named by TDA_LOGGING, so that tda's parsers can be
checked against the lines real apps write. app_test.go drives it."""

import logging
import logging.config
import os
import secrets

SETUP = os.environ.get("TDA_LOGGING", "werkzeug")

# Flask's logging documentation, "Basic Configuration".
FLASK_DOCS_DICTCONFIG = {
    "version": 1,
    "formatters": {"default": {
        "format": "[%(asctime)s] %(levelname)s in %(module)s: %(message)s",
    }},
    "handlers": {"wsgi": {
        "class": "logging.StreamHandler",
        "stream": "ext://flask.logging.wsgi_errors_stream",
        "formatter": "default",
    }},
    "root": {
        "level": "INFO",
        "handlers": ["wsgi"],
    },
}


def configure_logging():
    """Sets up logging as the setup says, before the app exists (as the docs advise)."""
    import werkzeug.serving

    # Werkzeug colours its request lines on a terminal. Werkzeug 2.2 (Debian 12) colours them
    # wherever they go, and only its own handler strips the codes off a file (through
    # colorama): with the app's handler they reach the file (dictconfig-colour). The other
    # setups log as to a file, without colours, as Werkzeug 2.3 and later do.
    werkzeug.serving._log_add_style = SETUP in ("werkzeug-tty", "dictconfig-colour")
    if SETUP == "werkzeug-tty":
        # What a terminal receives (and `docker logs` of a container with a TTY keeps): the
        # colour codes as written. Werkzeug's own handler would strip them off a file through
        # colorama, so it gets a plain one.
        logging.getLogger("werkzeug").setLevel(logging.INFO)
        logging.getLogger("werkzeug").addHandler(logging.StreamHandler())
    if SETUP in ("werkzeug", "werkzeug-tty"):
        return  # werkzeug's own handler; SQL through SQLALCHEMY_ECHO
    if SETUP == "basicconfig":
        logging.basicConfig(level=logging.INFO)
    elif SETUP in ("dictconfig", "dictconfig-colour"):
        logging.config.dictConfig(FLASK_DOCS_DICTCONFIG)
    elif SETUP == "named":
        logging.basicConfig(level=logging.INFO,
                            format="%(asctime)s - %(name)s - %(levelname)s - %(message)s")
    elif SETUP.startswith("gunicorn"):
        # The usual gunicorn deployment: the app's loggers write through gunicorn's error log.
        gunicorn_error = logging.getLogger("gunicorn.error")
        for name in ("sqlalchemy.engine", "app"):
            lg = logging.getLogger(name)
            lg.handlers = gunicorn_error.handlers
            lg.propagate = False
    else:
        raise SystemExit(f"unknown TDA_LOGGING {SETUP!r}")
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)


# As soon as possible, as Flask's docs say: before the extensions create their loggers (a
# dictConfig disables the loggers that exist when it runs, Alembic's among them).
configure_logging()

import click  # noqa: E402
from flask import Flask, jsonify, redirect, render_template_string, request  # noqa: E402
from flask_login import (LoginManager, UserMixin, current_user, login_required,  # noqa: E402
                         login_user, logout_user)
from flask_migrate import Migrate  # noqa: E402
from flask_sqlalchemy import SQLAlchemy  # noqa: E402
from werkzeug.security import check_password_hash, generate_password_hash  # noqa: E402

# A cheap password hash keeps the test fast; the lines logged are the same with the default.
HASH = "pbkdf2:sha256:1000"

app = Flask(__name__)
app.config["SECRET_KEY"] = "realapp-test"
app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + os.path.join(os.getcwd(), "app.db")
app.config["SQLALCHEMY_ECHO"] = SETUP in ("werkzeug", "werkzeug-tty")
db = SQLAlchemy(app)
migrate = Migrate(app, db)
login_manager = LoginManager(app)
login_manager.login_view = "login"


class User(UserMixin, db.Model):
    __tablename__ = "users"
    id = db.Column(db.Integer, primary_key=True)
    email = db.Column(db.String(120), unique=True, nullable=False)
    password_hash = db.Column(db.String(200), nullable=False)
    is_admin = db.Column(db.Boolean, nullable=False, default=False)
    last_login = db.Column(db.DateTime)


class Session(db.Model):
    __tablename__ = "sessions"
    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id"), nullable=False)
    token = db.Column(db.String(64), nullable=False)


class RefreshToken(db.Model):
    __tablename__ = "refresh_tokens"
    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id"), nullable=False)
    token = db.Column(db.String(64), nullable=False)


@login_manager.user_loader
def load_user(user_id):
    return db.session.get(User, int(user_id))


LOGIN_FORM = """<form method="post">{% if error %}<p>{{ error }}</p>{% endif %}
<input name="email"><input name="password" type="password"><button>Log in</button></form>"""


@app.get("/health")
def health():
    return "ok"


@app.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        return render_template_string(LOGIN_FORM)
    user = User.query.filter_by(email=request.form.get("email", "")).first()
    if user is None or not check_password_hash(user.password_hash, request.form.get("password", "")):
        # Flask-Login apps re-render the form: a failed login is a 200.
        return render_template_string(LOGIN_FORM, error="Invalid email or password")
    login_user(user)
    db.session.add(Session(user_id=user.id, token=secrets.token_hex(16)))
    db.session.commit()
    return redirect("/account")


@app.get("/account")
@login_required
def account():
    return f"Hello {current_user.email}"


@app.post("/account/password")
@login_required
def change_password():
    current_user.password_hash = generate_password_hash(request.form["new_password"], HASH)
    db.session.commit()
    return redirect("/account")


@app.post("/logout")
@login_required
def logout():
    # Logging out ends the user's sessions and refresh tokens: deletes that lose nothing.
    Session.query.filter_by(user_id=current_user.id).delete()
    RefreshToken.query.filter_by(user_id=current_user.id).delete()
    db.session.commit()
    logout_user()
    return redirect("/login")


@app.post("/api/login")
def api_login():
    body = request.get_json()
    user = User.query.filter_by(email=body.get("email", "")).first()
    if user is None or not check_password_hash(user.password_hash, body.get("password", "")):
        return jsonify(error="invalid credentials"), 401
    token = RefreshToken(user_id=user.id, token=secrets.token_hex(16))
    db.session.add(token)
    db.session.commit()
    return jsonify(refresh_token=token.token)


@app.post("/api/password/reset")
def api_password_reset():
    body = request.get_json()
    user = User.query.filter_by(email=body["email"]).first_or_404()
    user.password_hash = generate_password_hash(body["password"], HASH)
    db.session.commit()
    return jsonify(status="password updated")


@app.put("/api/users/<int:user_id>/password")
def api_set_password(user_id):
    user = db.get_or_404(User, user_id)
    user.password_hash = generate_password_hash(request.get_json()["password"], HASH)
    db.session.commit()
    return "", 204


@app.post("/api/users")
def api_create_user():
    body = request.get_json()
    user = User(email=body["email"], password_hash=generate_password_hash(body["password"], HASH))
    db.session.add(user)
    db.session.commit()
    return jsonify(id=user.id, email=user.email), 201


@app.get("/api/users/me")
@login_required
def api_me():
    return jsonify(id=current_user.id, email=current_user.email)


def delete_user(user):
    Session.query.filter_by(user_id=user.id).delete()
    RefreshToken.query.filter_by(user_id=user.id).delete()
    db.session.delete(user)
    db.session.commit()


@app.delete("/api/users/<int:user_id>")
def api_delete_user(user_id):
    delete_user(db.get_or_404(User, user_id))
    return "", 204


@app.post("/admin/users/<int:user_id>/delete")
@login_required
def admin_delete_user(user_id):
    delete_user(db.get_or_404(User, user_id))
    return redirect("/admin/users")


@app.cli.command("seed")
@click.argument("count", type=int)
def seed(count):
    """Creates users user1@example.com ... with password "secret<n>"."""
    for n in range(1, count + 1):
        db.session.add(User(email=f"user{n}@example.com", password_hash=generate_password_hash(f"secret{n}", HASH),
                            is_admin=n == 1))
    db.session.commit()
