namespace RollingReboot.Ssh.Tests;

public class SshProbeOptionsTests
{
    private static Func<string, string?> Env(Dictionary<string, string> values) => name => values.GetValueOrDefault(name);

    [Fact]
    public void FromEnvironment_ReadsEveryVariable()
    {
        using var temp = new TempDirectory();
        var key = TestKeys.GenerateEd25519(temp.Path, "id_ed25519");

        var options = SshProbeOptions.FromEnvironment(Env(new()
        {
            ["ROLLREBOOT_SSH_USER"] = "admin",
            ["ROLLREBOOT_SSH_KEY"] = key,
            ["ROLLREBOOT_SSH_PORT"] = "2222",
            ["ROLLREBOOT_SSH_KNOWN_HOSTS"] = temp.File("known_hosts"),
            ["ROLLREBOOT_SSH_KEY_PASSPHRASE"] = "s3cret-passphrase",
            ["ROLLREBOOT_SSH_COMMAND"] = "cat /run/boot-marker",
        }));

        Assert.Equal("admin", options.User);
        Assert.Equal(key, options.PrivateKeyPath);
        Assert.Equal(2222, options.Port);
        Assert.Equal(temp.File("known_hosts"), options.KnownHostsPath);
        Assert.Equal("s3cret-passphrase", options.KeyPassphrase);
        Assert.Equal("cat /run/boot-marker", options.Command);
        Assert.False(options.AcceptNew);
    }

    [Fact]
    public void FromEnvironment_Defaults()
    {
        using var temp = new TempDirectory();
        var key = TestKeys.GenerateEd25519(temp.Path, "id_ed25519");

        var options = SshProbeOptions.FromEnvironment(Env(new() { ["ROLLREBOOT_SSH_KEY"] = key }));

        Assert.Equal("root", options.User);
        Assert.Equal(22, options.Port);
        Assert.Equal("cat /proc/sys/kernel/random/boot_id", options.Command);
        Assert.Equal(Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".ssh", "known_hosts"), options.KnownHostsPath);
        Assert.Null(options.KeyPassphrase);
    }

    [Theory]
    [InlineData(UnixFileMode.GroupRead)]
    [InlineData(UnixFileMode.OtherRead)]
    [InlineData(UnixFileMode.GroupWrite)]
    public void FromEnvironment_KeyReadableByOthers_IsRefusedLikeSsh(UnixFileMode extra)
    {
        using var temp = new TempDirectory();
        var key = TestKeys.GenerateEd25519(temp.Path, "id_ed25519");
        File.SetUnixFileMode(key, UnixFileMode.UserRead | UnixFileMode.UserWrite | extra);

        var error = Assert.Throws<SshProbeConfigurationException>(() =>
            SshProbeOptions.FromEnvironment(Env(new() { ["ROLLREBOOT_SSH_KEY"] = key })));

        Assert.Contains("too open", error.Message, StringComparison.Ordinal);
        Assert.Contains($"chmod 600 '{key}'", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("65536")]
    [InlineData("22a")]
    [InlineData("-1")]
    public void FromEnvironment_BadPort_IsRefused(string port)
    {
        using var temp = new TempDirectory();
        var key = TestKeys.GenerateEd25519(temp.Path, "id_ed25519");

        var error = Assert.Throws<SshProbeConfigurationException>(() =>
            SshProbeOptions.FromEnvironment(Env(new() { ["ROLLREBOOT_SSH_KEY"] = key, ["ROLLREBOOT_SSH_PORT"] = port })));

        Assert.Contains("ROLLREBOOT_SSH_PORT", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FromEnvironment_MissingKeyFile_SaysWhichVariable()
    {
        using var temp = new TempDirectory();

        var error = Assert.Throws<SshProbeConfigurationException>(() =>
            SshProbeOptions.FromEnvironment(Env(new() { ["ROLLREBOOT_SSH_KEY"] = temp.File("nope") })));

        Assert.Contains("ROLLREBOOT_SSH_KEY", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ToString_NeverShowsThePassphrase()
    {
        var options = new SshProbeOptions { PrivateKeyPath = "/k", KeyPassphrase = "s3cret-passphrase" };

        var text = options.ToString();

        Assert.DoesNotContain("s3cret-passphrase", text, StringComparison.Ordinal);
        Assert.Contains("KeyPassphrase = (set)", text, StringComparison.Ordinal);
        Assert.Contains("PrivateKeyPath = /k", text, StringComparison.Ordinal);
    }
}
