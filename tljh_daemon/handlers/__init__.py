"""HTTP layer shared by pages and the REST API, and the HTML pages themselves."""
