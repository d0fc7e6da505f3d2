"""Custom fields (GOV-1): sales ops define fields per record type; one definition drives validation
on write, the API schema, list filters and sorting, import mapping, export and record pages."""
