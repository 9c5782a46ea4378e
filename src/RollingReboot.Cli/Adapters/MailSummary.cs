using System.Globalization;
using System.Text;
using RollingReboot.Cli.Output;
using RollingReboot.Core.Ports;
using RollingReboot.Core.Run;

namespace RollingReboot.Cli.Adapters;

/// <summary>Where the end-of-run mail goes and what sends it (--mail-to, --mail-command, --mail-from).</summary>
internal sealed record MailSettings(IReadOnlyList<string> To, string Command, string From)
{
    public const string DefaultCommand = "/usr/sbin/sendmail -t -oi";

    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(60);

    /// <summary>
    /// --mail-to, --mail-command and --mail-from checked together (exit 2 before anything changes): addresses that are
    /// one address each (no line breaks, commas or angle brackets to smuggle headers), a command whose program exists.
    /// </summary>
    public static MailSettings? Bind(IReadOnlyList<string> to, string? command, string? from, CliEnvironment env)
    {
        ArgumentNullException.ThrowIfNull(to);
        ArgumentNullException.ThrowIfNull(env);
        if (to.Count == 0)
        {
            return command is not null || from is not null
                ? throw new UserFacingException("--mail-command and --mail-from need --mail-to: name who gets the summary (e.g. --mail-to ops@example.com)")
                : null;
        }

        foreach (var address in to.Append(from ?? "rollreboot@localhost"))
        {
            if (!IsAddress(address))
            {
                throw new UserFacingException($"'{address.Replace("\r", "\\r", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal)}' is not a mail address (--mail-to / --mail-from take plain addresses such as ops@example.com, comma-separated or repeated)");
            }
        }

        var cmd = command ?? DefaultCommand;
        if (string.IsNullOrWhiteSpace(cmd))
        {
            throw new UserFacingException("--mail-command must name a command that reads the message on stdin (default: " + DefaultCommand + ")");
        }

        var program = cmd.Trim().Split(' ', 2)[0];
        if (!ProgramExists(program, env))
        {
            throw new UserFacingException(command is null
                ? $"--mail-to sends through {DefaultCommand}, and {program} does not exist here: install a mail transfer agent (postfix, msmtp-mta, nullmailer...) or give --mail-command"
                : $"--mail-command: {program} is not found or not executable; give the full path of a command that reads an RFC 5322 message on stdin");
        }

        return new MailSettings(to, cmd, from ?? "rollreboot@" + Dns.Host());
    }

    /// <summary>Sends the summary of <paramref name="report"/>. Never throws and never changes the run's exit code: a failure is logged.</summary>
    public async Task SendAsync(RunReport report, string cluster, TimeProvider clock, IRunLog log)
    {
        ArgumentNullException.ThrowIfNull(log);
        var message = MailSummary.Build(report, cluster, this, clock.GetUtcNow());
        var runner = new LocalCommandRunner();
        try
        {
            var result = await runner.RunAsync(Command, new Dictionary<string, string>(), s_timeout, message);
            if (result.Succeeded)
            {
                log.Info("Summary mailed to {To}", string.Join(", ", To));
            }
            else
            {
                log.Warn("The summary mail to {To} was not sent: {Detail} {Output} (the run's outcome stands)", string.Join(", ", To), result.Detail, result.Output);
            }
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            log.Warn("The summary mail to {To} was not sent: {Error} (the run's outcome stands)", string.Join(", ", To), e.Message);
        }
    }

    private static bool IsAddress(string a) =>
        a.Length is > 2 and < 255 && a.IndexOf('@', StringComparison.Ordinal) is > 0 && a.IndexOf('@', StringComparison.Ordinal) < a.Length - 1
        && a.All(c => c > ' ' && c < 127 && c is not (',' or '<' or '>' or '"' or '(' or ')' or ';' or ':' or '\\' or '[' or ']'));

    private static bool ProgramExists(string program, CliEnvironment env)
    {
        static bool Executable(string path) =>
            File.Exists(path) && (OperatingSystem.IsWindows() || (File.GetUnixFileMode(path) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0);

        if (program.Contains('/', StringComparison.Ordinal))
        {
            return Executable(program);
        }

        // A shell word (env, a builtin such as 'exec'): found on PATH, or left for the shell to judge.
        return program is "exec" or "env" || (env.Get("PATH") ?? "/usr/bin:/bin").Split(':', StringSplitOptions.RemoveEmptyEntries).Any(d => Executable(Path.Combine(d, program)));
    }

    private static class Dns
    {
        public static string Host() => Environment.MachineName.ToLowerInvariant() is { Length: > 0 } h && h.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.') ? h : "localhost";
    }
}

/// <summary>
/// The end-of-run mail as an RFC 5322 / MIME (RFC 2045-2047) message: headers a mail filter can sort on (Subject with
/// cluster and outcome, X-Rollreboot-Outcome), the plain-text report as the body and the Markdown report (what --report
/// writes) attached as text/markdown. Lines end in LF, as a local sendmail takes them on stdin.
/// </summary>
internal static class MailSummary
{
    public static string Build(RunReport report, string cluster, MailSettings mail, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentNullException.ThrowIfNull(mail);
        var boundary = "=_rollreboot_" + Guid.NewGuid().ToString("N");
        var attachment = $"rollreboot-{report.RunId}.md";
        var sb = new StringBuilder();
        sb.Append("From: rollreboot <").Append(mail.From).Append(">\n");
        sb.Append("To: ").Append(string.Join(", ", mail.To)).Append('\n');
        sb.Append("Subject: ").Append(EncodedWord(Subject(report, cluster))).Append('\n');
        sb.Append("Date: ").Append(now.ToString("ddd, dd MMM yyyy HH:mm:ss ", CultureInfo.InvariantCulture)).Append(now.ToString("zzz", CultureInfo.InvariantCulture).Replace(":", "", StringComparison.Ordinal)).Append('\n');
        sb.Append("Message-ID: <").Append(report.RunId).Append('.').Append(now.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture)).Append("@rollreboot.invalid>\n");
        sb.Append("MIME-Version: 1.0\n");
        sb.Append("X-Rollreboot-Run: ").Append(report.RunId).Append('\n');
        sb.Append("X-Rollreboot-Outcome: ").Append(report.Outcome.ToString()).Append('\n');
        sb.Append("Auto-Submitted: auto-generated\n");
        sb.Append("Content-Type: multipart/mixed; boundary=\"").Append(boundary).Append("\"\n\n");
        sb.Append("This is a MIME message: the run's summary, and its report attached as Markdown.\n\n");
        sb.Append("--").Append(boundary).Append('\n');
        sb.Append("Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n");
        sb.Append(QuotedPrintable(Body(report, cluster))).Append('\n');
        sb.Append("--").Append(boundary).Append('\n');
        sb.Append("Content-Type: text/markdown; charset=utf-8; name=\"").Append(attachment).Append("\"\n");
        sb.Append("Content-Disposition: attachment; filename=\"").Append(attachment).Append("\"\n");
        sb.Append("Content-Transfer-Encoding: base64\n\n");
        sb.Append(Base64Lines(Encoding.UTF8.GetBytes(ReportWriter.ToMarkdown(report))));
        sb.Append("--").Append(boundary).Append("--\n");
        return sb.ToString();
    }

    /// <summary>"rollreboot CLUSTER: done, 4 host(s) rebooted" — what an inbox list shows.</summary>
    public static string Subject(RunReport report, string cluster)
    {
        ArgumentNullException.ThrowIfNull(report);
        var rebooted = report.Hosts.Count(h => h.Result == "rebooted");
        var outcome = report.Outcome switch
        {
            RunOutcome.Done => "done",
            RunOutcome.Blocked => "refused, nothing changed",
            RunOutcome.StoppedRestored => "stopped, pool restored",
            RunOutcome.Interrupted => "interrupted, pool restored",
            _ => "OPERATOR ACTION NEEDED",
        };
        return string.Create(CultureInfo.InvariantCulture, $"rollreboot {cluster}: {outcome}, {rebooted} host(s) rebooted");
    }

    private static string Body(RunReport report, string cluster)
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"rollreboot on cluster {cluster} (pool {report.PoolName}), run {report.RunId}\n\n");
        sb.Append(ReportWriter.ToText(report));
        if (report.Outcome is RunOutcome.StoppedRestored or RunOutcome.Interrupted)
        {
            sb.Append(CultureInfo.InvariantCulture, $"\nThe pool is as it was before the run. Continue with: rollreboot resume --clustername {cluster}\n");
        }
        else if (report.Outcome == RunOutcome.NeedsOperator)
        {
            sb.Append("\nSomething could not be put back: see OPERATOR ACTION NEEDED above, then the run's journal and log.\n");
        }

        sb.Append("\nThe full report (Markdown, as --report writes it) is attached.\n");
        return sb.ToString();
    }

    /// <summary>RFC 2047 B encoding when the text is not plain ASCII.</summary>
    private static string EncodedWord(string text) =>
        text.All(c => c is >= ' ' and < (char)127) ? text : "=?utf-8?B?" + Convert.ToBase64String(Encoding.UTF8.GetBytes(text)) + "?=";

    /// <summary>RFC 2045 quoted-printable: lines at most 76 characters, soft breaks, '=' and 8-bit bytes escaped.</summary>
    internal static string QuotedPrintable(string text)
    {
        var sb = new StringBuilder();
        foreach (var line in text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n'))
        {
            var bytes = Encoding.UTF8.GetBytes(line);
            var width = 0;
            for (var i = 0; i < bytes.Length; i++)
            {
                var b = bytes[i];
                var last = i == bytes.Length - 1;
                var piece = b is (>= 33 and <= 126) and not (byte)'=' || (b is (byte)' ' or (byte)'\t' && !last)
                    ? ((char)b).ToString()
                    : "=" + b.ToString("X2", CultureInfo.InvariantCulture);
                if (width + piece.Length > 75)
                {
                    sb.Append("=\n");
                    width = 0;
                }

                sb.Append(piece);
                width += piece.Length;
            }

            sb.Append('\n');
        }

        return sb.ToString().TrimEnd('\n');
    }

    private static string Base64Lines(byte[] bytes)
    {
        var all = Convert.ToBase64String(bytes);
        var sb = new StringBuilder();
        for (var i = 0; i < all.Length; i += 76)
        {
            sb.Append(all.AsSpan(i, Math.Min(76, all.Length - i))).Append('\n');
        }

        return sb.ToString();
    }
}
