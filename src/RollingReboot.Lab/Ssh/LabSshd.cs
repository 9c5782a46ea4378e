using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace RollingReboot.Lab.Ssh;

/// <summary>
/// One real OpenSSH <c>sshd</c> per simulated host, each reached at the host's own loopback address and the
/// same port, through the host's <see cref="SshGate"/> (open while the host is up; the sshd itself runs on a private
/// port of that address from the host's first start to the lab's end). The client key pair and a known_hosts file holding every host key are generated here, so the CLI
/// verifies host keys exactly as on a real pool, with no trust on first use. Whatever command the CLI runs,
/// the host answers the simulated boot id (a forced command in authorized_keys), which changes at each
/// simulated boot.
/// Over 400 lines on purpose: one sshd's whole life (keys, config, start, readiness, stop, per-host faults) in
/// one place, since each part depends on the paths and ports the others set up.
/// </summary>
public sealed class LabSshd : IAsyncDisposable, IDisposable
{
    public const string SshdPath = "/usr/sbin/sshd";

    private static readonly string[] s_keygenCandidates = ["/usr/bin/ssh-keygen", "/usr/local/bin/ssh-keygen", "/bin/ssh-keygen"];
    private static readonly TimeSpan s_startTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan s_keygenTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan s_pollInterval = TimeSpan.FromMilliseconds(25);

    private readonly TimeProvider _timeProvider;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, HostState> _hosts = new(StringComparer.Ordinal);
    private readonly string _clientPublicKey;
    private bool _disposed;

    /// <summary>Generates the client key pair in <paramref name="stateDirectory"/> (created if missing).</summary>
    /// <param name="stateDirectory">A directory the lab owns (a temp directory); keys, configs and pid files go there.</param>
    /// <param name="port">The TCP port every host listens on, at its own address (see <see cref="FindFreePort"/>).</param>
    /// <param name="timeProvider">A wall clock for the bounded waits on sshd's start and stop (not the lab's scaled clock).</param>
    /// <exception cref="InvalidOperationException">sshd or ssh-keygen is missing, or ssh-keygen fails.</exception>
    public LabSshd(string stateDirectory, int port, TimeProvider? timeProvider = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(stateDirectory);
        ArgumentOutOfRangeException.ThrowIfLessThan(port, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        if (OperatingSystem.IsWindows() || !IsAvailable)
        {
            throw new InvalidOperationException(NotAvailableMessage);
        }

        _timeProvider = timeProvider ?? TimeProvider.System;
        StateDirectory = Path.GetFullPath(stateDirectory);
        Port = port;
        User = Environment.UserName;
        Directory.CreateDirectory(StateDirectory);
        Directory.CreateDirectory(Path.Combine(StateDirectory, "hosts"));

        PrivateKeyPath = Path.Combine(StateDirectory, "client_ed25519");
        _clientPublicKey = GenerateKey(PrivateKeyPath, "rollreboot-lab-client");
        File.SetUnixFileMode(PrivateKeyPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        KnownHostsPath = Path.Combine(StateDirectory, "known_hosts");
        WriteKnownHosts();
    }

    /// <summary>Whether <c>/usr/sbin/sshd</c> and <c>ssh-keygen</c> are installed.</summary>
    public static bool IsAvailable => !OperatingSystem.IsWindows() && File.Exists(SshdPath) && FindKeygen() is not null;

    /// <summary>What to tell the user when <see cref="IsAvailable"/> is false.</summary>
    public static string NotAvailableMessage =>
        $"OpenSSH server not found ({SshdPath} and ssh-keygen are needed): install it (apt-get install -y openssh-server).";

    /// <summary>The directory holding keys, configs and pid files.</summary>
    public string StateDirectory { get; }

    /// <summary>The port every host listens on.</summary>
    public int Port { get; }

    /// <summary>The user the CLI logs in as: the user running the lab.</summary>
    public string User { get; }

    /// <summary>The client's private key (ed25519, no passphrase, mode 0600).</summary>
    public string PrivateKeyPath { get; }

    /// <summary>known_hosts with every host's key as <c>[address]:port ssh-ed25519 ...</c>.</summary>
    public string KnownHostsPath { get; }

    /// <summary>The CLI's SSH settings for this lab, by the CLI's environment variable names.</summary>
    public IReadOnlyDictionary<string, string> CliEnvironment => new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["ROLLREBOOT_SSH_USER"] = User,
        ["ROLLREBOOT_SSH_KEY"] = PrivateKeyPath,
        ["ROLLREBOOT_SSH_PORT"] = Port.ToString(CultureInfo.InvariantCulture),
        ["ROLLREBOOT_SSH_KNOWN_HOSTS"] = KnownHostsPath,
    };

    /// <summary>
    /// A TCP port free on every given address (each host listens on its own address with the same port):
    /// takes an ephemeral port on the first address and checks it binds on the others, retrying a bounded number of times.
    /// </summary>
    /// <exception cref="InvalidOperationException">No common free port was found.</exception>
    public static int FindFreePort(IEnumerable<string> addresses)
    {
        ArgumentNullException.ThrowIfNull(addresses);
        var parsed = addresses.Select(IPAddress.Parse).ToList();
        if (parsed.Count == 0)
        {
            throw new ArgumentException("No address given.", nameof(addresses));
        }

        for (var attempt = 0; attempt < 50; attempt++)
        {
            var listeners = new List<TcpListener>();
            try
            {
                var first = new TcpListener(parsed[0], 0);
                first.Start();
                listeners.Add(first);
                var port = ((IPEndPoint)first.LocalEndpoint).Port;
                var free = true;
                foreach (var address in parsed.Skip(1))
                {
                    var listener = new TcpListener(address, port);
                    try
                    {
                        listener.Start();
                        listeners.Add(listener);
                    }
                    catch (SocketException)
                    {
                        free = false;
                        break;
                    }
                }

                if (free)
                {
                    return port;
                }
            }
            finally
            {
                foreach (var listener in listeners)
                {
                    listener.Stop();
                }
            }
        }

        throw new InvalidOperationException($"No TCP port is free on all of {string.Join(", ", parsed)}.");
    }

    /// <summary>
    /// Starts the host's sshd on <paramref name="address"/>:<see cref="Port"/> answering <paramref name="bootId"/>, and
    /// returns once it accepts SSH connections. The host key is generated on the first start and kept across restarts.
    /// </summary>
    /// <exception cref="InvalidOperationException">sshd exited or did not accept connections within 10 s; the message holds its stderr.</exception>
    public async Task StartHostAsync(string hostName, string address, string bootId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(hostName);
        ArgumentException.ThrowIfNullOrEmpty(address);
        ArgumentException.ThrowIfNullOrEmpty(bootId);
        ObjectDisposedException.ThrowIf(_disposed, this);
        _ = IPAddress.Parse(address);

        HostState host;
        bool known;
        lock (_lock)
        {
            known = _hosts.ContainsKey(hostName);
        }

        // Key generation runs outside the lock so that many hosts start in parallel.
        var created = known ? null : CreateHost(hostName, address);
        lock (_lock)
        {
            if (!_hosts.TryGetValue(hostName, out host!))
            {
                host = created!;
                _hosts[hostName] = host;
                WriteKnownHosts();
            }
            else if (!string.Equals(host.Address, address, StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"Host {hostName} has address {host.Address}, not {address}.");
            }

            if (host.Gate.IsOpen)
            {
                throw new InvalidOperationException($"sshd of host {hostName} is already running.");
            }
        }

        WriteBootId(host, bootId);
        if (host.Process is { HasExited: false } && !host.RestartNeeded)
        {
            // Its sshd kept running while the host was down: the host answers as soon as the gate opens.
            await host.Gate.OpenAsync(cancellationToken);
            return;
        }

        await StopProcessAsync(host);
        host.RestartNeeded = false;
        if (Environment.IsPrivilegedProcess && !OperatingSystem.IsWindows())
        {
            // sshd running as root insists on its privilege separation directory, root's and not group/world writable.
            Directory.CreateDirectory("/run/sshd",
                UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        }

        var process = new Process
        {
            StartInfo = new ProcessStartInfo(SshdPath)
            {
                ArgumentList = { "-D", "-e", "-f", host.ConfigPath },
                RedirectStandardError = true,
                RedirectStandardOutput = true,
                RedirectStandardInput = false,
                UseShellExecute = false,
            },
            EnableRaisingEvents = true,
        };
        var stderr = new BoundedLog();
        process.ErrorDataReceived += (_, e) => stderr.Add(e.Data);
        process.OutputDataReceived += (_, e) => stderr.Add(e.Data);
        process.Start();
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        lock (_lock)
        {
            host.Process = process;
            host.Log = stderr;
        }

        try
        {
            await WaitUntilListeningAsync(host, process, stderr, cancellationToken);
            await host.Gate.OpenAsync(cancellationToken);
        }
        catch
        {
            await StopProcessAsync(host);
            throw;
        }
    }

    /// <summary>The host is down: its gate closes (connections are refused) and every session through it is reset.</summary>
    public Task StopHostAsync(string hostName)
    {
        ArgumentException.ThrowIfNullOrEmpty(hostName);
        HostState? host;
        lock (_lock)
        {
            if (!_hosts.TryGetValue(hostName, out host))
            {
                return Task.CompletedTask;
            }
        }

        return host.Gate.CloseAsync();
    }

    /// <summary>Kills the host's sshd and every session it forked (a restart for a new host key, or the lab's end).</summary>
    private async Task StopProcessAsync(HostState host)
    {
        var hostName = host.Name;
        Process? process;
        lock (_lock)
        {
            process = host.Process;
            host.Process = null;
        }

        if (process is null)
        {
            return;
        }

        using (process)
        {
            try
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                }
            }
            catch (InvalidOperationException)
            {
                // It exited in between.
            }

            using var timeout = new CancellationTokenSource(s_startTimeout, _timeProvider);
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                throw new InvalidOperationException($"sshd of host {hostName} (pid {process.Id}) did not exit within {s_startTimeout}.");
            }
        }
    }

    /// <summary>Sets the boot id the host answers from now on (a simulated reboot gives a new one).</summary>
    public void SetBootId(string hostName, string bootId)
    {
        ArgumentException.ThrowIfNullOrEmpty(bootId);
        HostState host;
        lock (_lock)
        {
            if (!_hosts.TryGetValue(hostName, out host!))
            {
                throw new InvalidOperationException($"Host {hostName} was never started.");
            }
        }

        WriteBootId(host, bootId);
    }

    /// <summary>Whether the host answers SSH (its gate open and its sshd running).</summary>
    public bool IsRunning(string hostName)
    {
        lock (_lock)
        {
            return _hosts.TryGetValue(hostName, out var host) && host.Gate.IsOpen && host.Process is { HasExited: false };
        }
    }

    /// <summary>The host's public key line (<c>ssh-ed25519 AAAA...</c>), once the host has been started.</summary>
    public string? HostPublicKey(string hostName)
    {
        lock (_lock)
        {
            return _hosts.TryGetValue(hostName, out var host) ? host.PublicKey : null;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        List<HostState> hosts;
        lock (_lock)
        {
            hosts = [.. _hosts.Values];
        }

        List<Exception> errors = [];
        foreach (var host in hosts)
        {
            await host.Gate.CloseAsync();
            try
            {
                await StopProcessAsync(host);
            }
            catch (InvalidOperationException ex)
            {
                errors.Add(ex);
            }
        }

        if (errors.Count > 0)
        {
            throw new AggregateException("Some sshd processes did not stop.", errors);
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        lock (_lock)
        {
            foreach (var host in _hosts.Values)
            {
                host.Gate.Close();
                if (host.Process is { } process)
                {
                    try
                    {
                        process.Kill(entireProcessTree: true);
                    }
                    catch (InvalidOperationException)
                    {
                        // Already gone.
                    }

                    process.Dispose();
                    host.Process = null;
                }
            }
        }
    }

    /// <summary>
    /// Fault: the host comes back with a new host key (reinstalled, or an attacker): the known_hosts the lab
    /// handed out keeps the old one, so a careful client must refuse it. Call while the host's sshd is stopped.
    /// </summary>
    public void ReplaceHostKey(string hostName)
    {
        var directory = HostDirectory(hostName);
        var keyPath = Path.Combine(directory, "ssh_host_ed25519_key");
        File.Delete(keyPath);
        File.Delete(keyPath + ".pub");
        GenerateKey(keyPath, $"rollreboot-lab-{hostName}-replaced");
        // sshd reads its host key when it starts: the next start of the host restarts it (authorized_keys, by contrast,
        // is read at each connection).
        lock (_lock)
        {
            _hosts[hostName].RestartNeeded = true;
        }
    }

    /// <summary>Fault: the host no longer accepts the CLI's key (authorized_keys emptied). Call while its sshd is stopped.</summary>
    public void RefuseClientKey(string hostName) =>
        File.WriteAllText(Path.Combine(HostDirectory(hostName), "authorized_keys"), "");

    /// <summary>The directory a simulated host's shell runs commands in (hooks, needs-reboot checks sent over SSH).</summary>
    public string HostShellDirectory(string hostName) => HostDirectory(hostName);

    private string HostDirectory(string hostName)
    {
        lock (_lock)
        {
            return _hosts.TryGetValue(hostName, out var host)
                ? Path.GetDirectoryName(host.ConfigPath)!
                : throw new InvalidOperationException($"Host {hostName} was never started.");
        }
    }

    private HostState CreateHost(string hostName, string address)
    {
        var directory = Path.Combine(StateDirectory, "hosts", SafeName(hostName));
        Directory.CreateDirectory(directory);
        var hostKeyPath = Path.Combine(directory, "ssh_host_ed25519_key");
        var publicKey = GenerateKey(hostKeyPath, $"rollreboot-lab-{hostName}");
        var bootIdPath = Path.Combine(directory, "boot_id");
        var authorizedKeysPath = Path.Combine(directory, "authorized_keys");
        var configPath = Path.Combine(directory, "sshd_config");
        var privatePort = FreePortOn(address);

        // A simulated host's shell: the boot id command answers the host's current simulated boot id; any other
        // command (an operator's hook, a needs-reboot check) runs in the host's own lab directory.
        var shellPath = Path.Combine(directory, "host-shell.sh");
        File.WriteAllText(shellPath,
            "#!/bin/sh\n"
            + $"cd {ShellQuote(directory)} || exit 1\n"
            + $"export ROLLREBOOT_LAB_HOST={ShellQuote(hostName)}\n"
            + "case \"$SSH_ORIGINAL_COMMAND\" in\n  ''|*boot_id*) exec cat boot_id ;;\nesac\n"
            + "exec /bin/sh -c \"$SSH_ORIGINAL_COMMAND\"\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(shellPath, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        File.WriteAllText(authorizedKeysPath,
            $"command=\"{ShellQuote(shellPath).Replace("\"", "\\\"", StringComparison.Ordinal)}\",no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding {_clientPublicKey}\n");

        var config = new StringBuilder()
            .Append(CultureInfo.InvariantCulture, $"ListenAddress {address}:{privatePort}\n")
            .Append(CultureInfo.InvariantCulture, $"HostKey {hostKeyPath}\n")
            .Append(CultureInfo.InvariantCulture, $"PidFile {Path.Combine(directory, "sshd.pid")}\n")
            .Append(CultureInfo.InvariantCulture, $"AuthorizedKeysFile {authorizedKeysPath}\n")
            .Append("StrictModes no\n")
            .Append("UsePAM no\n")
            .Append("PubkeyAuthentication yes\n")
            .Append("PasswordAuthentication no\n")
            .Append("KbdInteractiveAuthentication no\n")
            .Append("PermitRootLogin prohibit-password\n")
            .Append(CultureInfo.InvariantCulture, $"AllowUsers {User}\n")
            .Append("AllowTcpForwarding no\n")
            .Append("X11Forwarding no\n")
            .Append("PrintMotd no\n")
            .Append("UseDNS no\n")
            .Append("LogLevel ERROR\n")
            // The forced command runs through the user's shell; bash sources ~/.bashrc for a top-level shell
            // started by sshd, which on some machines costs a second per probe. A simulated host answers fast.
            .Append("SetEnv SHLVL=1\n")
            .ToString();
        File.WriteAllText(configPath, config);

        var ip = IPAddress.Parse(address);
        return new HostState(hostName, address, configPath, bootIdPath, publicKey, privatePort,
            new SshGate(new IPEndPoint(ip, Port), new IPEndPoint(ip, privatePort), _timeProvider));
    }

    private void WriteKnownHosts()
    {
        var builder = new StringBuilder();
        foreach (var host in _hosts.Values.OrderBy(h => h.Name, StringComparer.Ordinal))
        {
            builder.Append(CultureInfo.InvariantCulture, $"[{host.Address}]:{Port} {host.PublicKey}\n");
        }

        WriteAtomically(KnownHostsPath, builder.ToString());
    }

    private static void WriteBootId(HostState host, string bootId) =>
        WriteAtomically(host.BootIdPath, bootId.Trim() + "\n");

    /// <summary>Replaces a file in one rename, so a reader never sees it half written.</summary>
    private static void WriteAtomically(string path, string content)
    {
        var temporary = $"{path}.{Guid.NewGuid():N}.tmp";
        File.WriteAllText(temporary, content);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(temporary, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        }

        File.Move(temporary, path, overwrite: true);
    }

    private async Task WaitUntilListeningAsync(HostState host, Process process, BoundedLog stderr, CancellationToken cancellationToken)
    {
        var start = _timeProvider.GetTimestamp();
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (process.HasExited)
            {
                await process.WaitForExitAsync(cancellationToken);
                throw new InvalidOperationException(
                    $"sshd of host {host.Name} on {host.Address}:{host.PrivatePort} exited with code {process.ExitCode}: {stderr}");
            }

            if (await AnswersSshBannerAsync(host.Address, host.PrivatePort, cancellationToken))
            {
                return;
            }

            if (_timeProvider.GetElapsedTime(start) > s_startTimeout)
            {
                throw new InvalidOperationException(
                    $"sshd of host {host.Name} did not accept connections on {host.Address}:{host.PrivatePort} within {s_startTimeout}: {stderr}");
            }

            await Task.Delay(s_pollInterval, _timeProvider, cancellationToken);
        }
    }

    private async Task<bool> AnswersSshBannerAsync(string address, int port, CancellationToken cancellationToken)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2), _timeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, cancellationToken);
        try
        {
            using var client = new TcpClient(AddressFamily.InterNetwork);
            await client.ConnectAsync(IPAddress.Parse(address), port, linked.Token);
            var stream = client.GetStream();
            var buffer = new byte[256];
            var read = 0;
            while (read < 4)
            {
                var n = await stream.ReadAsync(buffer.AsMemory(read), linked.Token);
                if (n == 0)
                {
                    return false;
                }

                read += n;
            }

            return Encoding.ASCII.GetString(buffer, 0, read).StartsWith("SSH-", StringComparison.Ordinal);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return false;
        }
        catch (Exception ex) when (ex is SocketException or IOException)
        {
            return false;
        }
    }

    /// <summary>Generates an ed25519 key pair without passphrase (kept if already there) and returns the public key's <c>type base64</c>.</summary>
    private static string GenerateKey(string privateKeyPath, string comment)
    {
        var publicKeyPath = privateKeyPath + ".pub";
        if (!(File.Exists(privateKeyPath) && File.Exists(publicKeyPath)))
        {
            File.Delete(privateKeyPath);
            File.Delete(publicKeyPath);
            var keygen = FindKeygen() ?? throw new InvalidOperationException(NotAvailableMessage);
            using var process = Process.Start(new ProcessStartInfo(keygen)
            {
                ArgumentList = { "-q", "-t", "ed25519", "-N", string.Empty, "-C", comment, "-f", privateKeyPath },
                RedirectStandardError = true,
                RedirectStandardOutput = true,
                RedirectStandardInput = true,
                UseShellExecute = false,
            }) ?? throw new InvalidOperationException("ssh-keygen did not start.");
            process.StandardInput.Close();
            var errorTask = process.StandardError.ReadToEndAsync();
            var outputTask = process.StandardOutput.ReadToEndAsync();
            if (!process.WaitForExit(s_keygenTimeout))
            {
                process.Kill(entireProcessTree: true);
                throw new InvalidOperationException($"ssh-keygen did not finish within {s_keygenTimeout}.");
            }

            process.WaitForExit();
            if (process.ExitCode != 0 || !File.Exists(publicKeyPath))
            {
                throw new InvalidOperationException(
                    $"ssh-keygen failed with code {process.ExitCode}: {errorTask.GetAwaiter().GetResult()}{outputTask.GetAwaiter().GetResult()}");
            }
        }

        var fields = File.ReadAllText(publicKeyPath).Split([' ', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length < 2)
        {
            throw new InvalidOperationException($"{publicKeyPath} is not a public key.");
        }

        return $"{fields[0]} {fields[1]}";
    }

    /// <summary>A port free on this address now, other than the hosts' SSH port: a host's private sshd port.</summary>
    private int FreePortOn(string address)
    {
        while (true)
        {
            var probe = new TcpListener(IPAddress.Parse(address), 0);
            probe.Start();
            var port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            if (port != Port)
            {
                return port;
            }
        }
    }

    private static string? FindKeygen()
    {
        foreach (var candidate in s_keygenCandidates)
        {
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        var path = Environment.GetEnvironmentVariable("PATH") ?? string.Empty;
        return path.Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(directory => Path.Combine(directory, "ssh-keygen"))
            .FirstOrDefault(File.Exists);
    }

    private static string SafeName(string hostName)
    {
        var builder = new StringBuilder(hostName.Length);
        foreach (var c in hostName)
        {
            builder.Append(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_');
        }

        return builder.ToString();
    }

    private static string ShellQuote(string text) => "'" + text.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    private sealed class HostState(string name, string address, string configPath, string bootIdPath, string publicKey, int privatePort, SshGate gate)
    {
        /// <summary>Where the host's sshd listens, behind its gate.</summary>
        public int PrivatePort { get; } = privatePort;

        /// <summary>The host's SSH port as clients see it.</summary>
        public SshGate Gate { get; } = gate;

        /// <summary>Its host key changed: the next start restarts sshd.</summary>
        public bool RestartNeeded { get; set; }

        public string Name { get; } = name;

        public string Address { get; } = address;

        public string ConfigPath { get; } = configPath;

        public string BootIdPath { get; } = bootIdPath;

        public string PublicKey { get; } = publicKey;

        public Process? Process { get; set; }

        public BoundedLog? Log { get; set; }
    }

    /// <summary>The last lines sshd wrote, for error messages.</summary>
    private sealed class BoundedLog
    {
        private const int MaxLines = 20;
        private readonly Queue<string> _lines = new();
        private readonly Lock _lock = new();

        public void Add(string? line)
        {
            if (string.IsNullOrWhiteSpace(line))
            {
                return;
            }

            lock (_lock)
            {
                _lines.Enqueue(line);
                while (_lines.Count > MaxLines)
                {
                    _lines.Dequeue();
                }
            }
        }

        public override string ToString()
        {
            lock (_lock)
            {
                return _lines.Count == 0 ? "(sshd wrote nothing)" : string.Join(" | ", _lines);
            }
        }
    }
}
