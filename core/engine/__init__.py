"""The engine: the jobs table and its queue (`jobs`), the runner's claim loop (`runner`), the
execution of one job (`execution`), the recording of its result (`recording`), and the spool that
keeps fetched results until they are stored (`spool`). See docs/architecture.md, "The engine"."""
