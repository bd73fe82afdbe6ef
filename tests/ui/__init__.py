"""UI checks: headless Chromium on both UIs (test and development tooling)."""
