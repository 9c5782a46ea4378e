using System.Globalization;

namespace RollingReboot.Xapi.Wire;

/// <summary>XAPI datetimes: <c>20240101T12:34:56Z</c>, with or without hyphens, with Z, ±hh:mm, ±hhmm or no zone (UTC).</summary>
public static class XapiDateTime
{
    private static readonly string[] s_formats =
    [
        "yyyyMMdd'T'HH:mm:ss", "yyyyMMdd'T'HHmmss", "yyyy-MM-dd'T'HH:mm:ss", "yyyyMMdd'T'HH:mm:ss.FFFFFFF",
        "yyyy-MM-dd'T'HH:mm:ss.FFFFFFF",
    ];

    public static bool TryParse(string? text, out DateTimeOffset value)
    {
        value = default;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        var s = text.Trim();
        var offset = TimeSpan.Zero;
        if (s.EndsWith('Z') || s.EndsWith('z'))
        {
            s = s[..^1];
        }
        else if (s.Length > 6 && (s[^6] is '+' or '-') && s[^3] == ':')
        {
            if (!TryOffset(s[^6..], out offset))
            {
                return false;
            }

            s = s[..^6];
        }
        else if (s.Length > 5 && (s[^5] is '+' or '-') && s.IndexOf('T', StringComparison.Ordinal) < s.Length - 5)
        {
            if (!TryOffset(s[^5..^2] + ":" + s[^2..], out offset))
            {
                return false;
            }

            s = s[..^5];
        }

        if (!DateTime.TryParseExact(s, s_formats, CultureInfo.InvariantCulture, DateTimeStyles.None, out var dt))
        {
            return false;
        }

        value = new DateTimeOffset(DateTime.SpecifyKind(dt, DateTimeKind.Unspecified), offset).ToUniversalTime();
        return true;
    }

    public static string Format(DateTimeOffset value) =>
        value.UtcDateTime.ToString("yyyyMMdd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    /// <summary>XAPI's boot_time / agent_start_time: Unix seconds as a float string.</summary>
    public static bool TryParseUnixSeconds(string? text, out DateTimeOffset value)
    {
        value = default;
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) || double.IsNaN(seconds) || seconds < 0 || seconds > 32503680000)
        {
            return false;
        }

        value = DateTimeOffset.UnixEpoch.AddTicks((long)(seconds * TimeSpan.TicksPerSecond));
        return true;
    }

    private static bool TryOffset(string text, out TimeSpan offset)
    {
        offset = default;
        var sign = text[0] == '-' ? -1 : 1;
        if (!int.TryParse(text.AsSpan(1, 2), NumberStyles.None, CultureInfo.InvariantCulture, out var h) ||
            !int.TryParse(text.AsSpan(4, 2), NumberStyles.None, CultureInfo.InvariantCulture, out var m) || h > 14 || m > 59)
        {
            return false;
        }

        offset = sign * new TimeSpan(h, m, 0);
        return true;
    }
}
