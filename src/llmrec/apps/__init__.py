"""Applications over the library: the command line (:mod:`.cli`), the HTTP server
(:mod:`.server`, extra ``server``) and Ray (:mod:`.ray`, extra ``ray``)."""
