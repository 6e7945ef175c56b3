"""The board: a static HTML page of the ledger's runs, their curves and campaigns (`kjob board`).

One folder (`.kjob/board/` by default, kjob.paths.BoardPaths), opened from disk and loading
nothing from the network:

    index.html      the page: a fixed shell with no data in it
    board.css       light and dark (prefers-color-scheme)
    board.js        the page's state (in the URL's fragment), the table and the curves
    pages.js        the campaign view and the run page
    query.js        --where conditions and sorting, as `kjob runs` reads them
    charts.js       the line chart and the parameter plot, hand-written SVG
    dom.js          the small DOM helpers they share; every piece of run content goes in
                    with textContent
    data.js         every run's row, the campaigns, the columns (`kjobBoard({...})`), rewritten
                    atomically by `kjob board --watch` and polled by the open page
    runs/<id>.js    one run's curves, log tail, outputs and reports, loaded when it is shown

    data        what the board shows, from the ledger and the fetched files (BoardQuery, collect)
    page        writing the folder (write_board) and keeping it fresh (BoardKeeper, watch_board)
"""

from kjob.board.data import BoardQuery, collect
from kjob.board.page import BoardKeeper, BoardReport, watch_board, write_board

__all__ = ["BoardKeeper", "BoardQuery", "BoardReport", "collect", "watch_board", "write_board"]
