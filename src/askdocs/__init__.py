"""askdocs: a private, offline knowledge base over your own documents."""
