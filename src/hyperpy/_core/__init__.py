"""Sans-IO protocol and pool logic shared by both worlds: it decides, it never waits."""
