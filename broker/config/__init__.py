"""The broker's settings: ``settings`` defines ``Settings`` and ``load_settings`` (the merged TOML file and
``BROKER_*`` environment, checked as a whole), ``sections`` the typed sections it is made of (limits, sessions,
logging, ...), and ``reader`` the typed value reader both use. Composition: only the wiring, the CLI, the web
layer and the demo read settings; adapters and shared helpers are handed the values they need. Nothing is
re-exported here; import the module that defines a name."""
