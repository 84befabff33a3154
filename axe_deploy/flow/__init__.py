"""The build flow: configuration, the build state, the steps by stage (software, hardware,
compilers), the runner, and parameter sweeps.
"""
