"""Storage: atomic save directories and manifests (:mod:`.io`), the write-ahead event log
(:mod:`.eventlog`)."""
