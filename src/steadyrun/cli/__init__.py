"""The `steadyrun` command: one module per command (`runs`, `show`, `sync`, `demo`),
`main` holds the grammar. Nothing imports this package but `steadyrun.__main__`.
"""
