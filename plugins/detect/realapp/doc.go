// Package realapp holds the tests that check tda's parsers against the logs a real Flask app
// writes: testdata/app.py (Flask-SQLAlchemy, Flask-Login, Flask-Migrate, a JSON API) runs in
// every common logging setup (Werkzeug's dev server plain and coloured, logging.basicConfig,
// the dictConfig of Flask's docs with and without Werkzeug's colours, a named-logger format,
// gunicorn with its default, an X-Forwarded-For and a JSON access format), is driven by real
// HTTP requests and flask CLI commands, and every line it logs is run through the detection
// parser with the shipped default settings and compared with what the line truly is. The
// captured lines are kept in testdata/logs, where they are checked without Python too.
package realapp
