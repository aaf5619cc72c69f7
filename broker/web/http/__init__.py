"""HTTP plumbing shared by the blueprints: the browser's session as the journeys see it, session ids bound to
their cookie, and the same-origin check of state-changing requests."""
