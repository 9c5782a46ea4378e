using System.Globalization;
using System.Text.RegularExpressions;
using RollingReboot.Core.Time;

namespace RollingReboot.Cli.Commands;

/// <summary>
/// Durations and moments given on the command line or in the config file. A moment is resolved on the run's clock
/// (its date and local zone: the lab's in rehearsals, a fake one in tests), never on the machine's date.
/// </summary>
internal static partial class TimeArguments
{
    private static readonly string[] s_withOffset =
    [
        "yyyy-MM-dd'T'HH:mmK", "yyyy-MM-dd'T'HH:mm:ssK", "yyyy-MM-dd'T'HH:mm:ss.FFFFFFFK",
        "yyyy-MM-dd HH:mmK", "yyyy-MM-dd HH:mm:ssK",
    ];

    private static readonly string[] s_localDateTime =
    [
        "yyyy-MM-dd'T'HH:mm", "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd HH:mm", "yyyy-MM-dd HH:mm:ss",
    ];

    private static readonly string[] s_timeOfDay = ["H:mm", "HH:mm", "H:mm:ss", "HH:mm:ss"];

    /// <summary>--window-end: a duration from now (90m), a time of day (its next occurrence, 04:00), a local date and
    /// time (2026-11-23T04:00, in the clock's zone) or a moment with an offset (2026-11-23T04:00Z).</summary>
    public static DateTimeOffset ParseWindowEnd(string text, TimeProvider clock)
    {
        ArgumentNullException.ThrowIfNull(text);
        var t = text.Trim();
        var now = clock.GetUtcNow();
        DateTimeOffset at;
        if (DurationForm().IsMatch(t))
        {
            return now + ParseDuration(t, "--window-end");
        }

        if (TimeOnly.TryParseExact(t, s_timeOfDay, CultureInfo.InvariantCulture, DateTimeStyles.None, out var timeOfDay))
        {
            return LocalTimes.NextOccurrence(timeOfDay, clock);
        }

        if (HasOffset().IsMatch(t)
            && DateTimeOffset.TryParseExact(t, s_withOffset, CultureInfo.InvariantCulture, DateTimeStyles.None, out var withOffset))
        {
            at = withOffset;
        }
        else if (DateTime.TryParseExact(t, s_localDateTime, CultureInfo.InvariantCulture, DateTimeStyles.None, out var local))
        {
            at = LocalTimes.AtLocal(DateOnly.FromDateTime(local), TimeOnly.FromDateTime(local), clock);
        }
        else
        {
            throw new UserFacingException($"--window-end '{text}' is neither a time (04:00, 2026-11-23T04:00) nor a duration (90m, 2h)");
        }

        return at > now ? at : throw new UserFacingException($"--window-end {text} is already past");
    }

    public static TimeSpan ParseDuration(string text, string option)
    {
        ArgumentNullException.ThrowIfNull(text);
        var t = text.Trim().ToLowerInvariant();
        var unit = t.Length > 0 && char.IsLetter(t[^1]) ? t[^1] : 'm';
        var number = char.IsLetter(t.Length > 0 ? t[^1] : '0') ? t[..^1] : t;
        if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) || n <= 0 || unit is not ('s' or 'm' or 'h'))
        {
            throw new UserFacingException($"{option} '{text}' is not a duration; use e.g. 900s, 20m or 1h");
        }

        return unit switch { 's' => TimeSpan.FromSeconds(n), 'h' => TimeSpan.FromHours(n), _ => TimeSpan.FromMinutes(n) };
    }

    [GeneratedRegex(@"^[0-9.]+\s*[smhSMH]$")]
    private static partial Regex DurationForm();

    [GeneratedRegex(@"(Z|[+-]\d{2}:?\d{2})$", RegexOptions.IgnoreCase)]
    private static partial Regex HasOffset();
}
