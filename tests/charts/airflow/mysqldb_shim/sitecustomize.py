"""PyMySQL posing as MySQLdb, for the config-parity test only.

The chart's metadata DB driver is mysqlclient (`mysql+mysqldb`), the one Airflow supports on
MySQL; the official image ships it, but it is a C extension that needs libmariadb-dev to build,
which the project's lock cannot require. Airflow 3.3 refuses to start on any `mysql` URL unless
`MySQLdb` imports (it registers a datetime converter), so the parity test puts this directory
on PYTHONPATH and rewrites the URL's driver to `mysql+pymysql`: everything else is as rendered.
"""

import sys

import pymysql
import pymysql.converters

pymysql.install_as_MySQLdb()
sys.modules["MySQLdb.converters"] = pymysql.converters
pymysql.converters.DateTime2literal = pymysql.converters.escape_datetime  # type: ignore[attr-defined]
