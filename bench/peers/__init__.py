"""Other OpenID Providers run side by side with idp in benchmarks, each behind `target.Target`."""
