//! Read-only widgets that draw the dashboard from plain data.
