using System.Globalization;
using System.Text;

namespace RollingReboot.Ssh;

/// <summary>A setting of the SSH probe is missing or unsafe; the message says what and how to fix it.</summary>
public sealed class SshProbeConfigurationException : Exception
{
    public SshProbeConfigurationException()
    {
    }

    public SshProbeConfigurationException(string message)
        : base(message)
    {
    }

    public SshProbeConfigurationException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>How <see cref="SshHostProbe"/> reaches a host. Immutable; the passphrase never appears in <see cref="ToString"/>.</summary>
public sealed record SshProbeOptions
{
    public const string UserVariable = "ROLLREBOOT_SSH_USER";
    public const string KeyVariable = "ROLLREBOOT_SSH_KEY";
    public const string PortVariable = "ROLLREBOOT_SSH_PORT";
    public const string KnownHostsVariable = "ROLLREBOOT_SSH_KNOWN_HOSTS";
    public const string KeyPassphraseVariable = "ROLLREBOOT_SSH_KEY_PASSPHRASE";
    public const string CommandVariable = "ROLLREBOOT_SSH_COMMAND";

    /// <summary>The command that names the running boot on Linux (a new random UUID each boot).</summary>
    public const string DefaultCommand = "cat /proc/sys/kernel/random/boot_id";

    private const UnixFileMode GroupOrOtherAccess =
        UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
        | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    /// <summary>The user to log in as (XenServer's dom0 is administered as root).</summary>
    public string User { get; init; } = "root";

    public int Port { get; init; } = 22;

    /// <summary>The private key file (OpenSSH or PEM format).</summary>
    public required string PrivateKeyPath { get; init; }

    /// <summary>The private key's passphrase, if it has one. Never logged.</summary>
    public string? KeyPassphrase { get; init; }

    /// <summary>The command whose output identifies the boot.</summary>
    public string Command { get; init; } = DefaultCommand;

    public string KnownHostsPath { get; init; } = DefaultKnownHostsPath;

    /// <summary>On first contact, accept a host key that known_hosts does not hold and append it. A changed key is always refused.</summary>
    public bool AcceptNew { get; init; }

    /// <summary>How long to wait for the TCP connection and the SSH handshake, authentication included.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long the command may take to answer.</summary>
    public TimeSpan CommandTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary><c>~/.ssh/known_hosts</c>.</summary>
    public static string DefaultKnownHostsPath =>
        Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".ssh", "known_hosts");

    /// <summary>
    /// Reads the options from <c>ROLLREBOOT_SSH_*</c> variables. Without <c>ROLLREBOOT_SSH_KEY</c> the first of
    /// <c>~/.ssh/id_ed25519</c>, <c>id_ecdsa</c>, <c>id_rsa</c> that exists is used.
    /// </summary>
    /// <param name="getVariable">Reads a variable; the process environment when null.</param>
    /// <exception cref="SshProbeConfigurationException">A value is invalid, no key is found, or the key file is readable by others.</exception>
    public static SshProbeOptions FromEnvironment(Func<string, string?>? getVariable = null)
    {
        getVariable ??= Environment.GetEnvironmentVariable;
        string? Get(string name) => getVariable(name) is { Length: > 0 } value ? value : null;

        var keyPath = Get(KeyVariable) ?? FindDefaultIdentity()
            ?? throw new SshProbeConfigurationException(
                $"No SSH private key: set {KeyVariable} to the key file that logs in to the hosts (or create ~/.ssh/id_ed25519).");

        var port = 22;
        if (Get(PortVariable) is { } portText
            && (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out port) || port is < 1 or > 65535))
        {
            throw new SshProbeConfigurationException($"{PortVariable}='{portText}' is not a TCP port (1-65535).");
        }

        var options = new SshProbeOptions
        {
            User = Get(UserVariable) ?? "root",
            Port = port,
            PrivateKeyPath = ExpandHome(keyPath),
            KeyPassphrase = Get(KeyPassphraseVariable),
            Command = Get(CommandVariable) ?? DefaultCommand,
            KnownHostsPath = Get(KnownHostsVariable) is { } knownHosts ? ExpandHome(knownHosts) : DefaultKnownHostsPath,
        };
        options.Validate();
        return options;
    }

    /// <summary>Checks what ssh itself would refuse: a missing key file, or one that others can read.</summary>
    /// <exception cref="SshProbeConfigurationException">The message says what is wrong and how to fix it.</exception>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(User))
        {
            throw new SshProbeConfigurationException($"The SSH user is empty: set {UserVariable}.");
        }

        if (Port is < 1 or > 65535)
        {
            throw new SshProbeConfigurationException($"SSH port {Port} is not a TCP port (1-65535).");
        }

        if (string.IsNullOrWhiteSpace(Command))
        {
            throw new SshProbeConfigurationException($"The boot id command is empty: set {CommandVariable} or leave it unset.");
        }

        if (ConnectTimeout <= TimeSpan.Zero || CommandTimeout <= TimeSpan.Zero)
        {
            throw new SshProbeConfigurationException("SSH timeouts must be positive.");
        }

        if (!File.Exists(PrivateKeyPath))
        {
            throw new SshProbeConfigurationException($"SSH private key '{PrivateKeyPath}' does not exist: set {KeyVariable} to the key file.");
        }

        if (!OperatingSystem.IsWindows())
        {
            var mode = File.GetUnixFileMode(PrivateKeyPath);
            if ((mode & GroupOrOtherAccess) != 0)
            {
                var octal = Convert.ToString((int)mode & 0x1ff, 8).PadLeft(4, '0');
                throw new SshProbeConfigurationException(
                    $"Permissions {octal} for SSH private key '{PrivateKeyPath}' are too open: it must not be accessible by others. "
                    + $"Run: chmod 600 '{PrivateKeyPath}'");
            }
        }
    }

    /// <summary>Lists every setting except the passphrase, which only shows whether it is set.</summary>
    private bool PrintMembers(StringBuilder builder)
    {
        builder.Append(CultureInfo.InvariantCulture, $"User = {User}, Port = {Port}, PrivateKeyPath = {PrivateKeyPath}, ");
        builder.Append(CultureInfo.InvariantCulture, $"KeyPassphrase = {(KeyPassphrase is null ? "(none)" : "(set)")}, ");
        builder.Append(CultureInfo.InvariantCulture, $"Command = {Command}, KnownHostsPath = {KnownHostsPath}, AcceptNew = {AcceptNew}, ");
        builder.Append(CultureInfo.InvariantCulture, $"ConnectTimeout = {ConnectTimeout}, CommandTimeout = {CommandTimeout}");
        return true;
    }

    private static string? FindDefaultIdentity()
    {
        var sshDirectory = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".ssh");
        return new[] { "id_ed25519", "id_ecdsa", "id_rsa" }
            .Select(name => Path.Combine(sshDirectory, name))
            .FirstOrDefault(File.Exists);
    }

    private static string ExpandHome(string path) =>
        path == "~" || path.StartsWith("~/", StringComparison.Ordinal)
            ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), path.TrimStart('~').TrimStart('/'))
            : path;
}
