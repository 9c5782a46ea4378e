using System.Collections.Concurrent;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace RollingReboot.Xapi.Tls;

/// <summary>
/// How a XAPI host's certificate is trusted. XenServer hosts present self-signed certificates, so the
/// default is: a certificate valid for the system trust store, or one whose SHA-256 is pinned, or one
/// recorded earlier in a known-hosts style file (trust on first use only when asked). Anything else is
/// refused with the fingerprint in the message, so the operator can pin it after checking it.
/// </summary>
public sealed class XapiCertificatePolicy
{
    private readonly HashSet<string> _pins;
    private readonly ConcurrentDictionary<string, string> _rejections = new(StringComparer.OrdinalIgnoreCase);
    private readonly Lock _storeLock = new();

    public XapiCertificatePolicy(IEnumerable<string>? pins = null, bool insecure = false, string? knownCertificatesPath = null, bool trustNew = false)
    {
        _pins = (pins ?? []).Select(Normalize).Where(p => p.Length > 0).ToHashSet(StringComparer.Ordinal);
        Insecure = insecure;
        KnownCertificatesPath = knownCertificatesPath;
        TrustNew = trustNew;
        foreach (var pin in _pins)
        {
            if (pin.Length != 64 || !pin.All(Uri.IsHexDigit))
            {
                throw new ArgumentException($"certificate pin '{pin}' is not a SHA-256 fingerprint (64 hex digits, colons allowed)", nameof(pins));
            }
        }
    }

    public bool Insecure { get; }

    public string? KnownCertificatesPath { get; }

    public bool TrustNew { get; }

    public static string Fingerprint(X509Certificate certificate) =>
        Convert.ToHexStringLower(SHA256.HashData(certificate.GetRawCertData()));

    public static string Normalize(string pin) =>
        pin.Replace(":", "", StringComparison.Ordinal).Replace(" ", "", StringComparison.Ordinal).Trim().ToLowerInvariant().Replace("sha256/", "", StringComparison.Ordinal);

    /// <summary>Why the last certificate of <paramref name="host"/> was refused, if it was.</summary>
    public string? RejectionFor(string host) => _rejections.TryGetValue(host, out var r) ? r : null;

    public bool Validate(string host, X509Certificate? certificate, SslPolicyErrors errors)
    {
        if (certificate is null)
        {
            _rejections[host] = $"host {host} presented no TLS certificate";
            return false;
        }

        if (Insecure || errors == SslPolicyErrors.None)
        {
            return true;
        }

        var fingerprint = Fingerprint(certificate);
        if (_pins.Contains(fingerprint))
        {
            _rejections.TryRemove(host, out _);
            return true;
        }

        if (KnownCertificatesPath is not null)
        {
            lock (_storeLock)
            {
                var known = ReadKnown(KnownCertificatesPath);
                if (known.TryGetValue(host, out var recorded))
                {
                    if (recorded == fingerprint)
                    {
                        return true;
                    }

                    _rejections[host] = $"the TLS certificate of XAPI host {host} CHANGED (now sha256 {fingerprint}, recorded {recorded} in {KnownCertificatesPath}); " +
                        "if the host's certificate was replaced on purpose, remove that line or pin the new fingerprint";
                    return false;
                }

                if (TrustNew)
                {
                    AppendKnown(KnownCertificatesPath, host, fingerprint);
                    return true;
                }
            }
        }

        _rejections[host] = _pins.Count > 0
            ? $"the TLS certificate of XAPI host {host} (sha256 {fingerprint}) does not match the pinned fingerprint; check the host, then fix ROLLREBOOT_XAPI_CERT_SHA256"
            : $"the TLS certificate of XAPI host {host} (sha256 {fingerprint}) is not trusted; check it on the host, then pin it with ROLLREBOOT_XAPI_CERT_SHA256={fingerprint} or accept it once with --xapi-trust-new";
        return false;
    }

    private static Dictionary<string, string> ReadKnown(string path)
    {
        var result = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        if (!File.Exists(path))
        {
            return result;
        }

        foreach (var line in File.ReadLines(path))
        {
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length >= 2 && !parts[0].StartsWith('#'))
            {
                result[parts[0]] = Normalize(parts[1]);
            }
        }

        return result;
    }

    private static void AppendKnown(string path, string host, string fingerprint)
    {
        var dir = Path.GetDirectoryName(path);
        if (!string.IsNullOrEmpty(dir))
        {
            Directory.CreateDirectory(dir);
        }

        var created = !File.Exists(path);
        File.AppendAllText(path, $"{host} {fingerprint}\n");
        if (created && !OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }
}
