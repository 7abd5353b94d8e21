"""A small Flask service whose log lines tda captures."""
import logging

from flask import Flask, request

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
app = Flask(__name__)
log = logging.getLogger("shop")


@app.route("/")
def index():
    return "ok\n"


@app.route("/users/<int:user_id>/password", methods=["POST"])
def change_password(user_id):
    log.info("password_changed user_id=%d actor=%s ip=%s", user_id, request.headers.get("X-User", "anonymous"),
             request.remote_addr)
    return "changed\n"
