"""PostgreSQL isolation specs (``.spec`` files): parse, run as isolationtester does, compare."""
