using RollingReboot.Xapi;
using RollingReboot.Xapi.Tls;

namespace RollingReboot.Cli;

/// <summary>Connection settings common to every command that talks to a pool.</summary>
public sealed record XapiSettings(Uri Url, string User, string Password, IReadOnlyList<string> Pins, bool Insecure, bool TrustNew)
{
    public override string ToString() => $"{User}@{Url}";
}

public static class Connections
{
    public static XapiSettings ResolveXapi(CliEnvironment env, string? urlOption, string? userOption, string? passwordFileOption, IReadOnlyList<string> pinOptions, bool insecure, bool trustNew)
    {
        var urlText = urlOption ?? env.Get(EnvNames.XapiUrl)
            ?? throw new UserFacingException($"no XAPI address: set {EnvNames.XapiUrl} (or --xapi-url) to https://<any pool host>/");
        if (!Uri.TryCreate(urlText.Contains("://", StringComparison.Ordinal) ? urlText : "https://" + urlText, UriKind.Absolute, out var url) ||
            url.Scheme is not ("https" or "http") || string.IsNullOrEmpty(url.Host))
        {
            throw new UserFacingException($"XAPI address '{urlText}' is not a URL; use https://<pool host address>/");
        }

        if (url.Scheme == "http" && !insecure)
        {
            throw new UserFacingException($"XAPI address {url} is plain HTTP: the password would cross the network in clear; use https:// (or --insecure, loudly, for a test pool)");
        }

        var user = userOption ?? env.Get(EnvNames.XapiUser) ?? "root";
        var passwordFile = passwordFileOption ?? env.Get(EnvNames.XapiPasswordFile);
        var password = passwordFile is not null
            ? Secrets.ReadOwnerOnlyFile(passwordFile, "XAPI password")
            : env.Get(EnvNames.XapiPassword) ?? throw new UserFacingException($"no XAPI password: set {EnvNames.XapiPassword} or {EnvNames.XapiPasswordFile} (a file only you can read); passwords are never taken on the command line");
        var pins = pinOptions.Count > 0 ? pinOptions : (env.Get(EnvNames.XapiCertSha256) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return new XapiSettings(url, user, password, pins, insecure, trustNew);
    }

    public static XapiClient CreateXapiClient(XapiSettings settings, CliEnvironment env, TimeProvider clock)
    {
        XapiCertificatePolicy policy;
        try
        {
            policy = new XapiCertificatePolicy(settings.Pins, settings.Insecure, Path.Combine(env.ConfigDirectory(), "known_xapi_hosts"), settings.TrustNew);
        }
        catch (ArgumentException e)
        {
            throw new UserFacingException($"bad {EnvNames.XapiCertSha256}: {e.Message}");
        }

        return new XapiClient(new XapiClientOptions
        {
            Url = settings.Url,
            UserName = settings.User,
            Password = settings.Password,
            Certificates = policy,
            TimeProvider = clock,
            MasterSearchTimeout = TimeSpan.FromSeconds(30),
            CallTimeout = TimeSpan.FromSeconds(60),
        });
    }

    /// <summary>One line for a XAPI failure at connection time, in the operator's words.</summary>
    public static string Describe(XapiException e, XapiSettings settings) => e.Code switch
    {
        "SESSION_AUTHENTICATION_FAILED" => $"XAPI refused the login of user '{settings.User}' at {settings.Url.Host}: wrong user name or password (check {EnvNames.XapiUser} / {EnvNames.XapiPassword})",
        "SESSION_AUTHORIZATION_FAILED" => $"user '{settings.User}' may not use XAPI at {settings.Url.Host}: it needs the pool-admin role",
        XapiException.CertificateRejected => e.Parameters.FirstOrDefault() ?? "the XAPI host's certificate was refused",
        XapiException.TransportError => $"cannot reach XAPI at {settings.Url}: {e.Parameters.FirstOrDefault()} (check the address, that the host is up, and firewalls)",
        XapiException.ProtocolError => $"{settings.Url} did not answer like XAPI: {e.Parameters.FirstOrDefault()}",
        _ => $"XAPI at {settings.Url.Host} answered {e.Code}{(e.Parameters.Count > 0 ? " [" + string.Join(", ", e.Parameters) + "]" : "")}",
    };
}
