"""Placeholder until the CLI lands (replaced in this same issue)."""
def main() -> int:
    return 0
