"""Ground-truth solvers: SAT through python-sat, Orthogonal Vectors by brute force, ...

Every solver has a checker beside it (``solve_ov`` with ``is_orthogonal_pair``).
"""
