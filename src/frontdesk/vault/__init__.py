"""The token vault: connect people's accounts at other services, keep their tokens sealed and fresh, and call those
services' APIs for them without a token ever reaching a language model, a browser or a log (DESIGN §6)."""
