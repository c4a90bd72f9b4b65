"""The endpoint side: the client library, the terminal and the scenario runner.
"""
