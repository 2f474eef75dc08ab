"""Manager reports: SQL-aggregated model, renderers (text, md, html, csv, json; en and zh-CN) and
delivery (files, SMTP). ``reports.service.build_reports`` is the entry point the CLI uses."""
