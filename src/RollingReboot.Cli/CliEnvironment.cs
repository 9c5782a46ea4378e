using System.Globalization;
using RollingReboot.Core.Time;

namespace RollingReboot.Cli;

/// <summary>Environment variables the CLI reads (the names the lab's ready line hands out).</summary>
public static class EnvNames
{
    public const string XapiUrl = "ROLLREBOOT_XAPI_URL";
    public const string XapiUser = "ROLLREBOOT_XAPI_USER";
    public const string XapiPassword = "ROLLREBOOT_XAPI_PASSWORD";
    public const string XapiPasswordFile = "ROLLREBOOT_XAPI_PASSWORD_FILE";
    public const string XapiCertSha256 = "ROLLREBOOT_XAPI_CERT_SHA256";
    public const string CloudStackUrl = "ROLLREBOOT_CLOUDSTACK_URL";
    public const string Ssh = "ROLLREBOOT_SSH";
    public const string NotifyUrl = "ROLLREBOOT_NOTIFY_URL";
    public const string PrometheusUrl = "ROLLREBOOT_PROMETHEUS_URL";
    public const string TimeScale = "ROLLREBOOT_TIME_SCALE";
    public const string TimeOrigin = "ROLLREBOOT_TIME_ORIGIN";
    public const string StateDir = "ROLLREBOOT_STATE_DIR";
}

/// <summary>Process-level inputs, injectable for tests.</summary>
public sealed class CliEnvironment
{
    public required Func<string, string?> GetVariable { get; init; }

    public required TextWriter Out { get; init; }

    public required TextWriter Error { get; init; }

    public bool IsTerminal { get; init; }

    /// <summary>stderr is a terminal that takes cursor movement (not redirected; TERM set and not "dumb"): the live view may be shown.</summary>
    public bool ErrorIsTerminal { get; init; }

    public static CliEnvironment FromProcess() => new()
    {
        GetVariable = Environment.GetEnvironmentVariable,
        Out = Console.Out,
        Error = Console.Error,
        IsTerminal = !Console.IsOutputRedirected && !Console.IsErrorRedirected,
        ErrorIsTerminal = !Console.IsErrorRedirected && Output.LiveView.CapableTerm(Environment.GetEnvironmentVariable("TERM")),
    };

    public string? Get(string name) => GetVariable(name) is { Length: > 0 } v ? v : null;

    /// <summary>The wall clock, or the lab's scaled clock when the lab's environment says so.</summary>
    public TimeProvider CreateClock()
    {
        var scaleText = Get(EnvNames.TimeScale);
        if (scaleText is null)
        {
            return TimeProvider.System;
        }

        if (!double.TryParse(scaleText, NumberStyles.Float, CultureInfo.InvariantCulture, out var scale) || scale <= 0)
        {
            throw new UserFacingException($"{EnvNames.TimeScale}={scaleText} is not a positive number; unset it or use the value the lab printed");
        }

        // This is where the run's clock is chosen (the composition root): a scale without an origin starts the scaled
        // clock at this wall moment; with the lab's origin both processes share one simulated time.
        var origin = TimeProvider.System.GetUtcNow();
        if (Get(EnvNames.TimeOrigin) is { } originText &&
            !RollingReboot.Core.Time.IsoMoment.TryParse(originText, out origin))
        {
            throw new UserFacingException($"{EnvNames.TimeOrigin}={originText} is not an ISO 8601 time; use the value the lab printed");
        }

        return new ScaledTimeProvider(scale, origin, origin);
    }

    public string StateDirectory()
    {
        if (Get(EnvNames.StateDir) is { } dir)
        {
            return dir;
        }

        var xdg = Get("XDG_STATE_HOME");
        var home = Get("HOME") ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        return Path.Combine(xdg ?? Path.Combine(home, ".local", "state"), "rollreboot");
    }

    public string ConfigDirectory()
    {
        var xdg = Get("XDG_CONFIG_HOME");
        var home = Get("HOME") ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        return Path.Combine(xdg ?? Path.Combine(home, ".config"), "rollreboot");
    }
}
