"""Local services: the adapter API, the NL services, help files, LEIS and simulated states.
"""
