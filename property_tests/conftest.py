import tests._profiles  # noqa: F401  (registers and loads the hypothesis profile)
