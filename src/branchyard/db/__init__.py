"""Database engines behind the postgres, mysql, sqlite and redis providers.

Modules here import their drivers inside functions, so that importing the
package (or a provider's ``env``/``describe``) never pays for a driver.
"""
