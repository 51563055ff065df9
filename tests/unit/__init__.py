"""Pure code: renderers, parsers, settings, the Connect client in process, the validator.
No servers, no database."""
