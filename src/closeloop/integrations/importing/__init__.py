"""Importing records from CSV and XLSX files (CRM-4), and the Maven CRM data set.

The pieces, in the order a file goes through them:

* :mod:`.readers` turns bytes into a :class:`~.readers.SourceTable` (encoding and delimiter found,
  or a clear error naming the line and byte);
* :mod:`.fields` says which fields each entity takes, in English and Chinese, and suggests a mapping;
* :mod:`.values` parses cells (dates, money, booleans, picklist labels);
* :mod:`.engine` plans every row (references resolved, the entity's Create schema validated,
  existing records matched by natural key) and writes all valid rows in one transaction, with an
  audit entry per record;
* :mod:`.jobs` runs an import in the background for the API; :mod:`.maven` loads the Maven data set.
"""
