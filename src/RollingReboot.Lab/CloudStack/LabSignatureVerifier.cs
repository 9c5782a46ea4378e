using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace RollingReboot.Lab.CloudStack;

/// <summary>
/// CloudStack's request check (ApiServer.verifyRequest), written apart from the client's signer so that the lab
/// catches the client's mistakes: from the decoded parameters, sort the names as sent, join
/// <c>name=URLEncoder.encode(value).replace("+", "%20")</c> with <c>&amp;</c>, lowercase everything, HMAC-SHA1 with
/// the secret key, Base64, and compare with the decoded <c>signature</c>.
/// </summary>
public static class LabSignatureVerifier
{
    /// <summary>The string CloudStack signs, from decoded parameters (<c>signature</c> left out).</summary>
    public static string UnsignedRequest(IReadOnlyDictionary<string, string> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var names = parameters.Keys
            .Where(name => !name.Equals("signature", StringComparison.OrdinalIgnoreCase))
            .ToList();
        // Java's Collections.sort on strings: UTF-16 code unit order, case-sensitive.
        names.Sort(StringComparer.Ordinal);
        var unsigned = new StringBuilder();
        foreach (var name in names)
        {
            if (unsigned.Length > 0)
            {
                unsigned.Append('&');
            }

            unsigned.Append(name).Append('=').Append(JavaUrlEncode(parameters[name]).Replace("+", "%20", StringComparison.Ordinal));
        }

        return unsigned.ToString().ToLowerInvariant();
    }

    public static string Signature(string unsignedRequest, string secretKey)
    {
        using var hmac = new HMACSHA1(Encoding.UTF8.GetBytes(secretKey));
        return Convert.ToBase64String(hmac.ComputeHash(Encoding.UTF8.GetBytes(unsignedRequest)));
    }

    /// <summary>True when <c>signature</c> is the one CloudStack computes for these decoded parameters.</summary>
    public static bool Verify(IReadOnlyDictionary<string, string> parameters, string secretKey)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var sent = parameters.FirstOrDefault(p => p.Key.Equals("signature", StringComparison.OrdinalIgnoreCase)).Value;
        if (sent is null)
        {
            return false;
        }

        var computed = Signature(UnsignedRequest(parameters), secretKey);
        return CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(sent), Encoding.UTF8.GetBytes(computed));
    }

    /// <summary>
    /// <c>java.net.URLEncoder.encode(s, "UTF-8")</c>: letters, digits and <c>. - * _</c> kept, space as <c>+</c>,
    /// every other character as its UTF-8 bytes in <c>%XX</c> (an unpaired surrogate as <c>?</c>).
    /// </summary>
    public static string JavaUrlEncode(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var output = new StringBuilder(value.Length);
        Span<byte> utf8 = stackalloc byte[4];
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '.' or '-' or '*' or '_')
            {
                output.Append(c);
                continue;
            }

            if (c == ' ')
            {
                output.Append('+');
                continue;
            }

            Rune rune;
            if (char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
            {
                rune = new Rune(c, value[i + 1]);
                i++;
            }
            else if (char.IsSurrogate(c))
            {
                rune = new Rune('?');
            }
            else
            {
                rune = new Rune(c);
            }

            var length = rune.EncodeToUtf8(utf8);
            for (var b = 0; b < length; b++)
            {
                output.Append('%').Append(((int)utf8[b]).ToString("X2", CultureInfo.InvariantCulture));
            }
        }

        return output.ToString();
    }

    /// <summary>
    /// Parses <c>expires</c> as CloudStack's DateUtil.parseTZDateString does: ISO offset date-time,
    /// <c>yyyy-MM-dd'T'HH:mm:ssZ</c>, ISO instant, with microseconds, or the legacy <c>yyyy-MM-dd'T'HH:mm:ss'Z'Z</c>.
    /// </summary>
    public static bool TryParseExpires(string text, out DateTimeOffset expires)
    {
        string[] formats =
        [
            "yyyy-MM-dd'T'HH:mm:sszzz",
            "yyyy-MM-dd'T'HH:mm:ss.FFFFFFFzzz",
            "yyyy-MM-dd'T'HH:mm:ss'Z'",
            "yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'",
        ];
        if (DateTimeOffset.TryParseExact(text, formats, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out expires))
        {
            return true;
        }

        // Offsets written +HHMM (Java's pattern letter Z), optionally after a literal 'Z'.
        var match = System.Text.RegularExpressions.Regex.Match(
            text, @"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,7})?)Z?([+-])(\d{2})(\d{2})$",
            System.Text.RegularExpressions.RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
        if (match.Success
            && DateTime.TryParseExact(match.Groups[1].Value, ["yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ss.FFFFFFF"], CultureInfo.InvariantCulture, DateTimeStyles.None, out var local))
        {
            var offset = new TimeSpan(int.Parse(match.Groups[3].Value, CultureInfo.InvariantCulture),
                int.Parse(match.Groups[4].Value, CultureInfo.InvariantCulture), 0);
            if (offset < TimeSpan.FromHours(18))
            {
                expires = new DateTimeOffset(DateTime.SpecifyKind(local, DateTimeKind.Unspecified),
                    match.Groups[2].Value == "-" ? -offset : offset);
                return true;
            }
        }

        expires = default;
        return false;
    }
}
