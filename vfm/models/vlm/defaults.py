"""Default models and limits of vfm caption / ask / read (no torch import: the CLI's parsers read them)."""

DEFAULT_CAPTION_MODEL = "florence-2-base"
DEFAULT_ASK_MODEL = "smolvlm-256m"
DEFAULT_READ_MODEL = "florence-2-base"
DEFAULT_GROUNDER = "florence-2-base"
DEFAULT_SEGMENTER = "sam-vit-base"
DEFAULT_MAX_NEW_TOKENS = 256
READ_MAX_NEW_TOKENS = 1024
MAX_NEW_TOKENS_LIMIT = 4096
DEFAULT_FRAMES = 8
MAX_FRAMES = 64
MAX_QUESTION_CHARS = 4000
