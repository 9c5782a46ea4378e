using System.Runtime.Versioning;

// These tests run real OpenSSH tools and check Unix file modes.
[assembly: UnsupportedOSPlatform("windows")]
