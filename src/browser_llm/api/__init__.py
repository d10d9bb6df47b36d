"""HTTP transport and composition: app, services, middleware, security, streams, errors."""
