"""The report page: one self-contained HTML file summing up a range of days for a manager.

One module per idea, in the order the page is built: ``data`` reads the report rows and
``figures`` the headline and per-user figures (computed in SQL by ``vis.call_figures``, never
here); ``text`` formats and escapes values; ``style`` holds colours and CSS; ``svg`` draws
generic charts; ``charts`` turns the data into the page's charts; ``tables`` into its tables;
``page`` puts tiles, charts and tables on the page.
"""
