"""The ground floor: the integer model, the hardware configuration and layout, the encoding tables,
the user error type and file I/O. Every other subpackage imports these; these import none of them."""
