"""Cryptography: the master key and AEAD envelopes, the signing key ring, password hashing."""
