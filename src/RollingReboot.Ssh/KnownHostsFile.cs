using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace RollingReboot.Ssh;

/// <summary>What a known_hosts file says about a host's key.</summary>
public enum KnownHostsStatus
{
    /// <summary>No line names this host with a key of this type.</summary>
    Unknown,
    /// <summary>A line names this host with exactly this key.</summary>
    Match,
    /// <summary>The host is known with another key of the same type (the key changed), or this key is revoked.</summary>
    Mismatch,
}

/// <summary>The answer of <see cref="KnownHostsFile.Lookup(string, int, ReadOnlySpan{byte})"/>.</summary>
/// <param name="Status">Match, Mismatch or Unknown.</param>
/// <param name="Revoked">The key is listed <c>@revoked</c> for this host (Status is then Mismatch).</param>
/// <param name="LineNumber">The line that decided (1-based), when one did.</param>
public sealed record KnownHostsResult(KnownHostsStatus Status, bool Revoked, int? LineNumber);

/// <summary>One usable line of a known_hosts file.</summary>
/// <param name="LineNumber">1-based line number in the file.</param>
/// <param name="Hosts">The host field as written (patterns or one hashed name).</param>
/// <param name="KeyType">The key type, e.g. <c>ssh-ed25519</c>.</param>
/// <param name="Key">The public key blob.</param>
/// <param name="Revoked">The line carries the <c>@revoked</c> marker.</param>
public sealed record KnownHostsEntry(int LineNumber, string Hosts, string KeyType, ReadOnlyMemory<byte> Key, bool Revoked);

/// <summary>
/// An OpenSSH known_hosts file (sshd(8), "SSH_KNOWN_HOSTS FILE FORMAT"): host patterns with <c>*</c>, <c>?</c>
/// and <c>!</c>, <c>[host]:port</c> for ports other than 22, hashed names <c>|1|salt|hmac</c>, the
/// <c>@revoked</c> marker. <c>@cert-authority</c> lines are ignored (certificates are not accepted).
/// Lines that cannot be read are skipped, as ssh does.
/// Just over 400 lines: one file format (patterns, hashing, markers, reading and appending) kept whole.
/// </summary>
public sealed class KnownHostsFile
{
    private const string HashMagic = "|1|";
    private const int Sha1Length = 20;
    private static readonly Lock s_appendLock = new();
    private readonly List<KnownHostsEntry> _entries;

    private KnownHostsFile(string? path, List<KnownHostsEntry> entries)
    {
        Path = path;
        _entries = entries;
    }

    /// <summary>The file this was read from, where <see cref="Append"/> writes; null when parsed from text.</summary>
    public string? Path { get; }

    /// <summary>The usable lines, in file order.</summary>
    public IReadOnlyList<KnownHostsEntry> Entries => _entries;

    /// <summary>Reads a known_hosts file; a missing file is an empty one.</summary>
    /// <exception cref="IOException">The file exists but cannot be read.</exception>
    /// <exception cref="UnauthorizedAccessException">The file exists but cannot be read.</exception>
    public static KnownHostsFile Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
        {
            return new KnownHostsFile(path, []);
        }

        return new KnownHostsFile(path, ParseEntries(File.ReadAllText(path, Encoding.UTF8)));
    }

    /// <summary>Parses known_hosts text; never throws on malformed content.</summary>
    public static KnownHostsFile Parse(string content, string? path = null)
    {
        ArgumentNullException.ThrowIfNull(content);
        return new KnownHostsFile(path, ParseEntries(content));
    }

    /// <summary>The host name as known_hosts spells it: <c>host</c> on port 22, <c>[host]:port</c> otherwise.</summary>
    public static string HostKeyName(string host, int port)
    {
        ArgumentException.ThrowIfNullOrEmpty(host);
        return port is 22 or 0
            ? host.ToLowerInvariant()
            : string.Create(CultureInfo.InvariantCulture, $"[{host.ToLowerInvariant()}]:{port}");
    }

    /// <summary>Computes a hashed host name <c>|1|base64(salt)|base64(HMAC-SHA1(salt, name))</c>, as <c>HashKnownHosts yes</c> writes.</summary>
    public static string HashHostName(string hostKeyName, ReadOnlySpan<byte> salt)
    {
        ArgumentNullException.ThrowIfNull(hostKeyName);
        var mac = HMACSHA1.HashData(salt, Encoding.UTF8.GetBytes(hostKeyName));
        return HashMagic + Convert.ToBase64String(salt) + "|" + Convert.ToBase64String(mac);
    }

    /// <summary>Looks up a host's key given as its blob.</summary>
    public KnownHostsResult Lookup(string host, int port, ReadOnlySpan<byte> keyBlob)
    {
        var keyType = SshPublicKey.KeyType(keyBlob);
        if (keyType is null)
        {
            return new KnownHostsResult(KnownHostsStatus.Unknown, false, null);
        }

        var name = HostKeyName(host, port);
        int? changedLine = null;
        int? matchLine = null;
        foreach (var entry in _entries)
        {
            if (!HostsMatch(entry.Hosts, name))
            {
                continue;
            }

            var sameKey = keyBlob.SequenceEqual(entry.Key.Span);
            if (entry.Revoked)
            {
                if (sameKey)
                {
                    // A revoked key is refused whatever other lines say.
                    return new KnownHostsResult(KnownHostsStatus.Mismatch, true, entry.LineNumber);
                }

                continue;
            }

            if (sameKey)
            {
                matchLine ??= entry.LineNumber;
            }
            else if (string.Equals(entry.KeyType, keyType, StringComparison.Ordinal))
            {
                changedLine ??= entry.LineNumber;
            }
        }

        if (matchLine is not null)
        {
            return new KnownHostsResult(KnownHostsStatus.Match, false, matchLine);
        }

        return changedLine is not null
            ? new KnownHostsResult(KnownHostsStatus.Mismatch, false, changedLine)
            : new KnownHostsResult(KnownHostsStatus.Unknown, false, null);
    }

    /// <summary>Looks up a host's key given as the key type and base64 blob of a known_hosts line.</summary>
    public KnownHostsResult Lookup(string host, int port, string keyType, string keyBase64)
    {
        ArgumentNullException.ThrowIfNull(keyType);
        var blob = TryDecodeKey(keyType, keyBase64);
        return blob is null
            ? new KnownHostsResult(KnownHostsStatus.Unknown, false, null)
            : Lookup(host, port, blob);
    }

    /// <summary>The key types this file holds (not revoked) for a host, in file order.</summary>
    public IReadOnlyList<string> KeyTypesFor(string host, int port)
    {
        var name = HostKeyName(host, port);
        return [.. _entries.Where(e => !e.Revoked && HostsMatch(e.Hosts, name)).Select(e => e.KeyType).Distinct(StringComparer.Ordinal)];
    }

    /// <summary>
    /// Appends a line for a newly accepted key the way ssh does (<c>host keytype base64</c>, the host as
    /// <c>[host]:port</c> when the port is not 22), creating the file (and its directory) readable by its owner only.
    /// </summary>
    public void Append(string host, int port, string keyType, string keyBase64)
    {
        if (Path is null)
        {
            throw new InvalidOperationException("This known_hosts was parsed from text and has no file to append to.");
        }

        ArgumentException.ThrowIfNullOrWhiteSpace(keyType);
        var blob = TryDecodeKey(keyType, keyBase64)
            ?? throw new ArgumentException($"Not a valid {keyType} public key.", nameof(keyBase64));

        var name = HostKeyName(host, port);
        lock (s_appendLock)
        {
            var directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(Path));
            if (!string.IsNullOrEmpty(directory) && !Directory.Exists(directory))
            {
                if (OperatingSystem.IsWindows())
                {
                    Directory.CreateDirectory(directory);
                }
                else
                {
                    Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                }
            }

            var options = new FileStreamOptions { Mode = FileMode.Append, Access = FileAccess.Write, Share = FileShare.Read };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }

            var needsNewline = NeedsLeadingNewline(Path);
            using (var stream = new FileStream(Path, options))
            using (var writer = new StreamWriter(stream, new UTF8Encoding(false)))
            {
                writer.NewLine = "\n";
                if (needsNewline)
                {
                    writer.WriteLine();
                }

                writer.WriteLine($"{name} {keyType} {keyBase64}");
            }

            _entries.Add(new KnownHostsEntry(CountLines(Path), name, keyType, blob, false));
        }
    }

    private static bool NeedsLeadingNewline(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists || info.Length == 0)
        {
            return false;
        }

        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        stream.Seek(-1, SeekOrigin.End);
        return stream.ReadByte() != '\n';
    }

    private static int CountLines(string path) => File.ReadLines(path).Count();

    private static List<KnownHostsEntry> ParseEntries(string content)
    {
        var entries = new List<KnownHostsEntry>();
        var lineNumber = 0;
        foreach (var rawLine in content.Split('\n'))
        {
            lineNumber++;
            var entry = ParseLine(rawLine.TrimEnd('\r'), lineNumber);
            if (entry is not null)
            {
                entries.Add(entry);
            }
        }

        return entries;
    }

    private static KnownHostsEntry? ParseLine(string line, int lineNumber)
    {
        var fields = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length == 0 || fields[0].StartsWith('#'))
        {
            return null;
        }

        var index = 0;
        var revoked = false;
        if (fields[0].StartsWith('@'))
        {
            switch (fields[0])
            {
                case "@revoked":
                    revoked = true;
                    break;
                default:
                    // @cert-authority (certificates are not accepted) or an unknown marker: skip the line.
                    return null;
            }

            index = 1;
        }

        if (fields.Length < index + 3)
        {
            return null;
        }

        var hosts = fields[index];
        var keyType = fields[index + 1];
        if (hosts.StartsWith('|') && !IsValidHashedName(hosts))
        {
            return null;
        }

        var blob = TryDecodeKey(keyType, fields[index + 2]);
        return blob is null ? null : new KnownHostsEntry(lineNumber, hosts, keyType, blob, revoked);
    }

    private static byte[]? TryDecodeKey(string keyType, string? keyBase64)
    {
        if (string.IsNullOrEmpty(keyBase64))
        {
            return null;
        }

        var buffer = new byte[(keyBase64.Length * 3 / 4) + 3];
        if (!Convert.TryFromBase64String(keyBase64, buffer, out var written))
        {
            return null;
        }

        var blob = buffer.AsSpan(0, written).ToArray();
        return string.Equals(SshPublicKey.KeyType(blob), keyType, StringComparison.Ordinal) ? blob : null;
    }

    private static bool IsValidHashedName(string hosts) => TrySplitHashed(hosts, out _, out _);

    private static bool TrySplitHashed(string hosts, out byte[] salt, out byte[] mac)
    {
        salt = [];
        mac = [];
        if (!hosts.StartsWith(HashMagic, StringComparison.Ordinal))
        {
            return false;
        }

        var parts = hosts[HashMagic.Length..].Split('|');
        if (parts.Length != 2)
        {
            return false;
        }

        var saltBuffer = new byte[64];
        var macBuffer = new byte[64];
        if (parts[0].Length > 64 || parts[1].Length > 64
            || !Convert.TryFromBase64String(parts[0], saltBuffer, out var saltLength)
            || !Convert.TryFromBase64String(parts[1], macBuffer, out var macLength)
            || saltLength != Sha1Length || macLength != Sha1Length)
        {
            return false;
        }

        salt = saltBuffer[..saltLength];
        mac = macBuffer[..macLength];
        return true;
    }

    /// <summary>Whether a host field names a host: one hashed name, or a comma list of patterns where a negated match wins.</summary>
    internal static bool HostsMatch(string hosts, string hostKeyName)
    {
        if (hosts.StartsWith('|'))
        {
            if (!TrySplitHashed(hosts, out var salt, out var mac))
            {
                return false;
            }

            var actual = HMACSHA1.HashData(salt, Encoding.UTF8.GetBytes(hostKeyName));
            return CryptographicOperations.FixedTimeEquals(actual, mac);
        }

        var positive = false;
        foreach (var rawPattern in hosts.Split(','))
        {
            var negated = rawPattern.StartsWith('!');
            var pattern = (negated ? rawPattern[1..] : rawPattern).ToLowerInvariant();
            if (!GlobMatch(hostKeyName, pattern))
            {
                continue;
            }

            if (negated)
            {
                return false;
            }

            positive = true;
        }

        return positive;
    }

    /// <summary>Shell-style match of the whole text against a pattern of literals, <c>*</c> (any run) and <c>?</c> (one character).</summary>
    internal static bool GlobMatch(string text, string pattern)
    {
        int t = 0, p = 0, starP = -1, starT = 0;
        while (t < text.Length)
        {
            if (p < pattern.Length && (pattern[p] == '?' || pattern[p] == text[t]))
            {
                t++;
                p++;
            }
            else if (p < pattern.Length && pattern[p] == '*')
            {
                starP = p++;
                starT = t;
            }
            else if (starP >= 0)
            {
                p = starP + 1;
                t = ++starT;
            }
            else
            {
                return false;
            }
        }

        while (p < pattern.Length && pattern[p] == '*')
        {
            p++;
        }

        return p == pattern.Length;
    }
}
