"""Pure core: no bleak, no Qt, no file or network I/O. Arrays in, arrays out."""
