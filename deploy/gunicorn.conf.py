"""gunicorn settings for the broker: ``gunicorn -c deploy/gunicorn.conf.py "broker:create_app()"``.

The access log leaves out query strings (%(U)s is the path alone): a sign-in callback's query carries an
authorization code and state, which never belong in a log.
"""

access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss'
accesslog = "-"
bind = "0.0.0.0:8000"
workers = 4
forwarded_allow_ips = "127.0.0.1"
