"""Make the controller test helpers (ctl_*.py) importable under importlib import mode."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
