"""The store: every table, query and migration of the switch.
"""
