"""The engine: the jobs table and its queue (`jobs`), the runner that claims and executes jobs
(`runner`), and the spool that keeps fetched results until they are stored (`spool`).
See docs/architecture.md, "The job lifecycle"."""
