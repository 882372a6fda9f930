"""The HTTP layer: it only translates between HTTP and the engine, registry and stores."""
