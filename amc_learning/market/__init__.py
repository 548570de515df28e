"""The market-data providers: daily bars from Alpaca or Polygon through their SDKs."""
