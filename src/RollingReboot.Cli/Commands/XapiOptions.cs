using System.CommandLine;

namespace RollingReboot.Cli.Commands;

/// <summary>Options shared by every command that connects to a pool (secrets only through the environment or files).</summary>
internal sealed class XapiOptions
{
    public Option<string?> Url { get; } = new("--xapi-url") { Description = $"Any host of the pool, https://ADDRESS/ (default: ${EnvNames.XapiUrl})" };

    public Option<string?> User { get; } = new("--xapi-user") { Description = $"XAPI user (default: ${EnvNames.XapiUser}, else root)" };

    public Option<string?> PasswordFile { get; } = new("--xapi-password-file") { Description = $"File holding the XAPI password, owner-only (default: ${EnvNames.XapiPassword} or ${EnvNames.XapiPasswordFile})" };

    public Option<string[]> Pins { get; } = new("--xapi-cert-sha256") { Description = $"Accept a host certificate with this SHA-256 fingerprint (repeatable; default: ${EnvNames.XapiCertSha256}, comma-separated)", AllowMultipleArgumentsPerToken = false };

    public Option<bool> TrustNew { get; } = new("--xapi-trust-new") { Description = "Accept and remember certificates of hosts seen for the first time (like ssh's accept-new)" };

    public Option<bool> Insecure { get; } = new("--insecure") { Description = "Do not verify XAPI certificates at all (test pools only; says so loudly)" };

    public void AddTo(Command command)
    {
        command.Options.Add(Url);
        command.Options.Add(User);
        command.Options.Add(PasswordFile);
        command.Options.Add(Pins);
        command.Options.Add(TrustNew);
        command.Options.Add(Insecure);
    }

    /// <summary>True when no pool address is given anywhere (option or environment).</summary>
    public bool NothingConfigured(ParseResult parse, CliEnvironment env) =>
        parse.GetValue(Url) is null && env.Get(EnvNames.XapiUrl) is null && env.Get(EnvNames.CloudStackUrl) is null;

    public XapiSettings Resolve(ParseResult parse, CliEnvironment env)
    {
        var insecure = parse.GetValue(Insecure);
        if (insecure)
        {
            env.Error.WriteLine("WARNING: --insecure: XAPI certificates are NOT verified; anyone on the path can read the pool password.");
        }

        return Connections.ResolveXapi(env, parse.GetValue(Url), parse.GetValue(User), parse.GetValue(PasswordFile), parse.GetValue(Pins) ?? [], insecure, parse.GetValue(TrustNew));
    }
}
