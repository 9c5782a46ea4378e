using System.Security.Cryptography;
using System.Text;

namespace RollingReboot.Ssh.Tests;

public class KnownHostsFileTests
{
    private static readonly string s_key = TestKeys.Ed25519Base64();
    private static readonly string s_otherKey = TestKeys.Ed25519Base64();

    private static KnownHostsStatus Status(string content, string host, int port, string keyType = "ssh-ed25519", string? key = null) =>
        KnownHostsFile.Parse(content).Lookup(host, port, keyType, key ?? s_key).Status;

    [Fact]
    public void Lookup_PlainHostOnPort22_Matches()
    {
        Assert.Equal(KnownHostsStatus.Match, Status($"10.0.0.5 ssh-ed25519 {s_key}\n", "10.0.0.5", 22));
    }

    [Fact]
    public void Lookup_OtherPort_NeedsBracketForm()
    {
        var content = $"[10.0.0.5]:2222 ssh-ed25519 {s_key}\n";
        Assert.Equal(KnownHostsStatus.Match, Status(content, "10.0.0.5", 2222));
        Assert.Equal(KnownHostsStatus.Unknown, Status(content, "10.0.0.5", 22));
        Assert.Equal(KnownHostsStatus.Unknown, Status($"10.0.0.5 ssh-ed25519 {s_key}\n", "10.0.0.5", 2222));
    }

    [Fact]
    public void Lookup_CommaListAndCase_MatchesAnyName()
    {
        var content = $"xen1.example.org,10.0.0.5,XEN2 ssh-ed25519 {s_key} root@xen\n";
        Assert.Equal(KnownHostsStatus.Match, Status(content, "10.0.0.5", 22));
        Assert.Equal(KnownHostsStatus.Match, Status(content, "Xen1.Example.Org", 22));
        Assert.Equal(KnownHostsStatus.Match, Status(content, "xen2", 22));
        Assert.Equal(KnownHostsStatus.Unknown, Status(content, "xen3", 22));
    }

    [Theory]
    [InlineData("10.0.0.*", "10.0.0.77", 22, KnownHostsStatus.Match)]
    [InlineData("10.0.0.?", "10.0.0.7", 22, KnownHostsStatus.Match)]
    [InlineData("10.0.0.?", "10.0.0.77", 22, KnownHostsStatus.Unknown)]
    [InlineData("[127.0.0.*]:2222", "127.0.0.3", 2222, KnownHostsStatus.Match)]
    [InlineData("[127.0.0.*]:2222", "127.0.0.3", 2223, KnownHostsStatus.Unknown)]
    [InlineData("*", "anything", 22, KnownHostsStatus.Match)]
    [InlineData("*.example.org,!bad.example.org", "good.example.org", 22, KnownHostsStatus.Match)]
    [InlineData("*.example.org,!bad.example.org", "bad.example.org", 22, KnownHostsStatus.Unknown)]
    [InlineData("!bad.example.org,*.example.org", "bad.example.org", 22, KnownHostsStatus.Unknown)]
    [InlineData("!bad.example.org", "good.example.org", 22, KnownHostsStatus.Unknown)]
    public void Lookup_Patterns_FollowOpenSshMatching(string patterns, string host, int port, KnownHostsStatus expected)
    {
        Assert.Equal(expected, Status($"{patterns} ssh-ed25519 {s_key}\n", host, port));
    }

    [Fact]
    public void Lookup_HashedEntryWithKnownSalt_Matches()
    {
        // |1|base64(salt)|base64(HMAC-SHA1 keyed by the salt over "[host]:port"), computed here independently.
        var salt = Enumerable.Range(1, 20).Select(i => (byte)i).ToArray();
        var mac = HMACSHA1.HashData(salt, Encoding.ASCII.GetBytes("[127.0.0.2]:2222"));
        var hashed = $"|1|{Convert.ToBase64String(salt)}|{Convert.ToBase64String(mac)}";
        Assert.Equal("|1|AQIDBAUGBwgJCgsMDQ4PEBESExQ=|", hashed[..32]);
        Assert.Equal(hashed, KnownHostsFile.HashHostName("[127.0.0.2]:2222", salt));

        var content = $"{hashed} ssh-ed25519 {s_key}\n";
        Assert.Equal(KnownHostsStatus.Match, Status(content, "127.0.0.2", 2222));
        Assert.Equal(KnownHostsStatus.Mismatch, Status(content, "127.0.0.2", 2222, key: s_otherKey));
        Assert.Equal(KnownHostsStatus.Unknown, Status(content, "127.0.0.3", 2222));
        Assert.Equal(KnownHostsStatus.Unknown, Status(content, "127.0.0.2", 22));
    }

    [Theory]
    [InlineData("|1|AQIDBAUGBwgJCgsMDQ4PEBESExQ=")]
    [InlineData("|1|AQID|AQIDBAUGBwgJCgsMDQ4PEBESExQ=")]
    [InlineData("|2|AQIDBAUGBwgJCgsMDQ4PEBESExQ=|AQIDBAUGBwgJCgsMDQ4PEBESExQ=")]
    [InlineData("|1|not base64!|AQIDBAUGBwgJCgsMDQ4PEBESExQ=")]
    public void Parse_MalformedHashedName_SkipsLine(string hosts)
    {
        var file = KnownHostsFile.Parse($"{hosts} ssh-ed25519 {s_key}\n10.0.0.5 ssh-ed25519 {s_key}\n");
        var entry = Assert.Single(file.Entries);
        Assert.Equal(2, entry.LineNumber);
    }

    [Fact]
    public void Lookup_OtherKeyOfSameType_IsMismatch()
    {
        var content = $"10.0.0.5 ssh-ed25519 {s_otherKey}\n";
        var result = KnownHostsFile.Parse(content).Lookup("10.0.0.5", 22, "ssh-ed25519", s_key);
        Assert.Equal(KnownHostsStatus.Mismatch, result.Status);
        Assert.False(result.Revoked);
        Assert.Equal(1, result.LineNumber);
    }

    [Fact]
    public void Lookup_OnlyKeyOfOtherType_IsUnknown()
    {
        var rsa = Convert.ToBase64String(TestKeys.Blob("ssh-rsa", 64));
        Assert.Equal(KnownHostsStatus.Unknown, Status($"10.0.0.5 ssh-rsa {rsa}\n", "10.0.0.5", 22));
    }

    [Fact]
    public void Lookup_OneOfSeveralKeysMatches_IsMatch()
    {
        var content = $"10.0.0.5 ssh-ed25519 {s_otherKey}\n10.0.0.5 ssh-ed25519 {s_key}\n";
        var result = KnownHostsFile.Parse(content).Lookup("10.0.0.5", 22, "ssh-ed25519", s_key);
        Assert.Equal(KnownHostsStatus.Match, result.Status);
        Assert.Equal(2, result.LineNumber);
    }

    [Fact]
    public void Lookup_RevokedKey_IsMismatchEvenWhenAlsoListed()
    {
        var content = $"10.0.0.5 ssh-ed25519 {s_key}\n@revoked * ssh-ed25519 {s_key}\n";
        var result = KnownHostsFile.Parse(content).Lookup("10.0.0.5", 22, "ssh-ed25519", s_key);
        Assert.Equal(KnownHostsStatus.Mismatch, result.Status);
        Assert.True(result.Revoked);
        Assert.Equal(2, result.LineNumber);
    }

    [Fact]
    public void Lookup_RevokedOtherKey_DoesNotAffectThisKey()
    {
        var content = $"@revoked 10.0.0.5 ssh-ed25519 {s_otherKey}\n10.0.0.5 ssh-ed25519 {s_key}\n";
        Assert.Equal(KnownHostsStatus.Match, Status(content, "10.0.0.5", 22));
    }

    [Fact]
    public void Parse_CertAuthorityCommentsBlanksAndUnknownMarkers_AreIgnored()
    {
        var content =
            "# a comment\n" +
            "\n" +
            "   \t \n" +
            $"@cert-authority *.example.org ssh-ed25519 {s_key}\n" +
            $"@unknown-marker 10.0.0.5 ssh-ed25519 {s_key}\n" +
            $"  # indented comment 10.0.0.5 ssh-ed25519 {s_key}\n";
        var file = KnownHostsFile.Parse(content);
        Assert.Empty(file.Entries);
        Assert.Equal(KnownHostsStatus.Unknown, file.Lookup("host.example.org", 22, "ssh-ed25519", s_key).Status);
    }

    [Fact]
    public void Parse_MalformedLines_AreSkippedAndLaterLinesStillCount()
    {
        var content =
            "10.0.0.5\n" +
            "10.0.0.5 ssh-ed25519\n" +
            "10.0.0.5 ssh-ed25519 !!!notbase64\n" +
            $"10.0.0.5 ssh-rsa {s_key}\n" + // the blob says ssh-ed25519: inconsistent line
            "@revoked\n" +
            $"10.0.0.5 ssh-ed25519 {s_key} comment with spaces\r\n";
        var file = KnownHostsFile.Parse(content);
        var entry = Assert.Single(file.Entries);
        Assert.Equal(6, entry.LineNumber);
        Assert.Equal(KnownHostsStatus.Match, file.Lookup("10.0.0.5", 22, "ssh-ed25519", s_key).Status);
    }

    [Fact]
    public void Parse_RandomBytes_NeverThrows()
    {
        // Fixed seed: a failure reproduces. Mixes pure noise with noise spliced into plausible lines.
        var random = new Random(20240611);
        string[] fragments = ["|1|", "|", "@revoked", "@cert-authority", "[", "]:", ",", "!", "*", "?", " ", "\t", "\n", "#",
            "ssh-ed25519", "ssh-rsa", s_key, "AAAA", "=", "10.0.0.5", "\r\n", "\0"];
        for (var i = 0; i < 3000; i++)
        {
            string content;
            if (i % 2 == 0)
            {
                var bytes = new byte[random.Next(0, 400)];
                random.NextBytes(bytes);
                content = Encoding.UTF8.GetString(bytes);
            }
            else
            {
                var builder = new StringBuilder();
                for (var j = random.Next(1, 40); j > 0; j--)
                {
                    builder.Append(random.Next(4) == 0 ? ((char)random.Next(0, 0xD800)).ToString() : fragments[random.Next(fragments.Length)]);
                }

                content = builder.ToString();
            }

            var file = KnownHostsFile.Parse(content);
            _ = file.Lookup("10.0.0.5", 22, "ssh-ed25519", s_key);
            _ = file.Lookup("10.0.0.5", 2222, TestKeys.Blob("ssh-ed25519"));
            _ = file.Lookup("10.0.0.5", 22, "ssh-ed25519", content);
            _ = file.KeyTypesFor("10.0.0.5", 22);
        }
    }

    [Fact]
    public void Lookup_GarbageKeyBlob_IsUnknown()
    {
        var file = KnownHostsFile.Parse($"10.0.0.5 ssh-ed25519 {s_key}\n");
        Assert.Equal(KnownHostsStatus.Unknown, file.Lookup("10.0.0.5", 22, [1, 2, 3]).Status);
        Assert.Equal(KnownHostsStatus.Unknown, file.Lookup("10.0.0.5", 22, [0xff, 0xff, 0xff, 0xff, 1]).Status);
    }

    [Fact]
    public void Load_MissingFile_IsEmpty()
    {
        using var temp = new TempDirectory();
        Assert.Empty(KnownHostsFile.Load(temp.File("absent")).Entries);
    }

    [Fact]
    public void Append_NewFile_WritesOpenSshLineOwnerOnly()
    {
        using var temp = new TempDirectory();
        var path = Path.Combine(temp.Path, "sub", "known_hosts");
        var file = KnownHostsFile.Load(path);

        file.Append("127.0.0.2", 2222, "ssh-ed25519", s_key);
        file.Append("10.0.0.5", 22, "ssh-ed25519", s_otherKey);

        Assert.Equal($"[127.0.0.2]:2222 ssh-ed25519 {s_key}\n10.0.0.5 ssh-ed25519 {s_otherKey}\n", File.ReadAllText(path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(path)!));
        Assert.Equal(KnownHostsStatus.Match, file.Lookup("127.0.0.2", 2222, "ssh-ed25519", s_key).Status);
        Assert.Equal(KnownHostsStatus.Match, KnownHostsFile.Load(path).Lookup("10.0.0.5", 22, "ssh-ed25519", s_otherKey).Status);
    }

    [Fact]
    public void Append_FileWithoutTrailingNewline_StartsANewLine()
    {
        using var temp = new TempDirectory();
        var path = temp.File("known_hosts");
        File.WriteAllText(path, $"10.0.0.5 ssh-ed25519 {s_otherKey}");

        KnownHostsFile.Load(path).Append("10.0.0.6", 22, "ssh-ed25519", s_key);

        var reloaded = KnownHostsFile.Load(path);
        Assert.Equal(2, reloaded.Entries.Count);
        Assert.Equal(KnownHostsStatus.Match, reloaded.Lookup("10.0.0.5", 22, "ssh-ed25519", s_otherKey).Status);
        Assert.Equal(KnownHostsStatus.Match, reloaded.Lookup("10.0.0.6", 22, "ssh-ed25519", s_key).Status);
    }

    [Fact]
    public void Append_InvalidKey_Throws()
    {
        using var temp = new TempDirectory();
        var file = KnownHostsFile.Load(temp.File("known_hosts"));
        Assert.Throws<ArgumentException>(() => file.Append("10.0.0.5", 22, "ssh-rsa", s_key));
        Assert.False(File.Exists(temp.File("known_hosts")));
    }

    [Fact]
    public void OpenSsh_FindsAppendedLines_AndItsHashedFileStillMatches()
    {
        // Interoperability with the real tools: ssh-keygen -F finds what Append wrote, and after ssh-keygen -H
        // hashes the file, the hashed entries still match here.
        using var temp = new TempDirectory();
        var path = temp.File("known_hosts");
        var hostKey = TestKeys.PublicKey(TestKeys.GenerateEd25519(temp.Path, "hostkey")).Split(' ')[1];
        var file = KnownHostsFile.Load(path);
        file.Append("127.0.0.9", 2222, "ssh-ed25519", hostKey);
        file.Append("10.1.2.3", 22, "ssh-ed25519", s_key);

        Assert.Contains(hostKey, TestKeys.RunKeygen("-F", "[127.0.0.9]:2222", "-f", path), StringComparison.Ordinal);
        Assert.Contains(s_key, TestKeys.RunKeygen("-F", "10.1.2.3", "-f", path), StringComparison.Ordinal);

        TestKeys.RunKeygen("-H", "-f", path);
        var hashed = KnownHostsFile.Load(path);
        Assert.All(hashed.Entries, e => Assert.StartsWith("|1|", e.Hosts, StringComparison.Ordinal));
        Assert.Equal(KnownHostsStatus.Match, hashed.Lookup("127.0.0.9", 2222, "ssh-ed25519", hostKey).Status);
        Assert.Equal(KnownHostsStatus.Mismatch, hashed.Lookup("127.0.0.9", 2222, "ssh-ed25519", s_key).Status);
        Assert.Equal(KnownHostsStatus.Match, hashed.Lookup("10.1.2.3", 22, "ssh-ed25519", s_key).Status);
    }
}
